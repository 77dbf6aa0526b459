"""dYdX v4 indexer simulator (aiohttp): the read endpoints primeguard uses, in the indexer's JSON
shapes (numbers as strings, perpetual sizes signed, asset sizes unsigned with a side), its 404
for unknown addresses, its geo-block 403, and the scenario's injected faults."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from primeguard.domain.money import decimal_str
from primeguard.sandbox.dydx.state import BASE_HEIGHT, DydxWorld, SubState

GEOBLOCK_BODY = {"errors": [{
    "msg": ("Because you appear to be a resident of, or using this application from, a jurisdiction that "
            "violates our terms of use, or have engaged in activity that violates our terms of use, you have "
            "been blocked. You may withdraw your funds from the protocol at any time."),
    "code": "GEOBLOCKED",
}]}
MALFORMED_BODY = '{"subaccount": {"equity": "12'  # truncated JSON, served as application/json


def _s(value: Decimal) -> str:
    return decimal_str(value)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(status: int, msg: str, **extra: Any) -> web.Response:
    return web.json_response({"errors": [{"msg": msg, **extra}]}, status=status)


def build_app(world: DydxWorld) -> web.Application:
    box = world.faults["dydx"]

    @web.middleware
    async def faults(request: web.Request, handler: Any) -> web.StreamResponse:
        if world.geo_blocked:
            return web.json_response(GEOBLOCK_BODY, status=403)
        d = box.decide(request.path_qs)
        if d.latency_s:
            await asyncio.sleep(d.latency_s)
        if d.action == "down":
            return _error(503, "Service Unavailable")
        if d.action == "rate_limit":
            limited = _error(429, "Too many requests")
            limited.headers["Retry-After"] = str(d.retry_after_s)
            return limited
        if d.action == "timeout":
            await asyncio.sleep(d.timeout_s)
        if d.action == "error":
            return _error(500, "Internal Server Error")
        resp: web.StreamResponse = await handler(request)
        if d.action == "malformed":
            return web.Response(text=MALFORMED_BODY, content_type="application/json")
        return resp

    def sub_json(address: str, sub: SubState) -> dict[str, Any]:
        height, _ = world.height()
        perps: dict[str, Any] = {}
        equity = sub.usdc
        margin = Decimal(0)
        for market, (size, entry) in sorted(sub.perps.items()):
            if size == 0:
                continue
            price = world.price(market, entry)
            equity += size * price
            margin += abs(size) * price * world.imf(market)
            perps[market] = perp_json(sub.number, market, size, entry, price)
        assets: dict[str, Any] = {}
        if sub.usdc != 0:
            assets["USDC"] = {"size": _s(abs(sub.usdc)), "symbol": "USDC", "side": "LONG" if sub.usdc > 0 else "SHORT",
                              "assetId": "0", "subaccountNumber": sub.number}
        return {
            "address": address, "subaccountNumber": sub.number, "equity": _s(equity),
            "freeCollateral": _s(equity - margin), "openPerpetualPositions": perps, "assetPositions": assets,
            "marginEnabled": True, "updatedAtHeight": str(height), "latestProcessedBlockHeight": str(height),
        }

    def perp_json(number: int, market: str, size: Decimal, entry: Decimal, price: Decimal) -> dict[str, Any]:
        return {
            "market": market, "status": "OPEN", "side": "LONG" if size > 0 else "SHORT", "size": _s(size),
            "maxSize": _s(abs(size)), "entryPrice": _s(entry), "exitPrice": None, "realizedPnl": "0",
            "unrealizedPnl": _s(size * (price - entry)), "createdAt": _iso(world.started),
            "createdAtHeight": str(BASE_HEIGHT), "closedAt": None, "sumOpen": _s(abs(size)), "sumClose": "0",
            "netFunding": "0", "subaccountNumber": number,
        }

    def lookup(request: web.Request) -> tuple[str, int] | web.Response:
        address = request.query.get("address")
        raw = request.query.get("subaccountNumber")
        if not address or raw is None or not raw.isdigit():
            return _error(400, "address and subaccountNumber are required", param="address")
        return address, int(raw)

    async def subaccount(request: web.Request) -> web.Response:
        address = request.match_info["address"]
        raw = request.match_info["number"]
        if not raw.isdigit():
            return _error(400, "subaccountNumber must be a non-negative integer", param="subaccountNumber")
        number = int(raw)
        with world.lock:
            st = world.account(address)
            if st is None or number not in st.subaccounts:
                return _error(404, f"No subaccount found with address {address} and subaccountNumber {number}")
            body = {"subaccount": sub_json(address, st.subaccounts[number])}
        return web.json_response(body)

    async def address_view(request: web.Request) -> web.Response:
        address = request.match_info["address"]
        with world.lock:
            st = world.account(address)
            if st is None:
                return _error(404, f"No subaccounts found for address {address}")
            subs = [sub_json(address, st.subaccounts[n]) for n in sorted(st.subaccounts)]
        return web.json_response({"subaccounts": subs, "totalTradingRewards": "0"})

    async def perpetual_positions(request: web.Request) -> web.Response:
        found = lookup(request)
        if isinstance(found, web.Response):
            return found
        address, number = found
        status = request.query.get("status", "OPEN")
        with world.lock:
            st = world.account(address)
            if st is None or number not in st.subaccounts:
                return _error(404, f"No subaccount found with address {address} and subaccountNumber {number}")
            sub = st.subaccounts[number]
            rows = [] if "OPEN" not in status.split(",") else [
                perp_json(number, m, size, entry, world.price(m, entry))
                for m, (size, entry) in sorted(sub.perps.items()) if size != 0]
        return web.json_response({"positions": rows})

    async def asset_positions(request: web.Request) -> web.Response:
        found = lookup(request)
        if isinstance(found, web.Response):
            return found
        address, number = found
        with world.lock:
            st = world.account(address)
            if st is None or number not in st.subaccounts:
                return _error(404, f"No subaccount found with address {address} and subaccountNumber {number}")
            assets = sub_json(address, st.subaccounts[number])["assetPositions"]
        return web.json_response({"positions": list(assets.values())})

    async def transfers(request: web.Request) -> web.Response:
        found = lookup(request)
        if isinstance(found, web.Response):
            return found
        address, number = found
        with world.lock:
            st = world.account(address)
            if st is None:
                return _error(404, f"No subaccount found with address {address} and subaccountNumber {number}")
            rows = [dict(t) for t in st.transfers if t.get("_number") == number]
        for t in rows:
            t.pop("_number", None)
        return web.json_response({"transfers": rows})

    async def markets(request: web.Request) -> web.Response:
        ticker = request.query.get("ticker")
        with world.lock:
            out = {}
            for m, price in sorted(world.oracle.items()):
                if ticker and m != ticker:
                    continue
                imf = world.imf(m)
                out[m] = {
                    "clobPairId": str(world.clob_ids[m]), "ticker": m, "status": "ACTIVE", "oraclePrice": _s(price),
                    "priceChange24H": "0", "volume24H": "0", "trades24H": 0, "nextFundingRate": "0",
                    "initialMarginFraction": _s(imf), "maintenanceMarginFraction": _s(imf * Decimal("0.6")),
                    "openInterest": "0", "atomicResolution": -10, "quantumConversionExponent": -9,
                    "tickSize": "1", "stepSize": "0.0001", "stepBaseQuantums": 1000000,
                    "subticksPerTick": 100000, "marketType": "CROSS",
                }
        return web.json_response({"markets": out})

    async def height(request: web.Request) -> web.Response:
        with world.lock:
            h, ts = world.height()
        return web.json_response({"height": str(h), "time": _iso(ts)})

    async def server_time(request: web.Request) -> web.Response:
        ts = time.time()  # the server clock; only the indexed chain lags
        return web.json_response({"iso": _iso(ts), "epoch": round(ts, 3)})

    app = web.Application(middlewares=[faults])
    app.router.add_get("/v4/addresses/{address}/subaccountNumber/{number}", subaccount)
    app.router.add_get("/v4/addresses/{address}", address_view)
    app.router.add_get("/v4/perpetualPositions", perpetual_positions)
    app.router.add_get("/v4/assetPositions", asset_positions)
    app.router.add_get("/v4/transfers", transfers)
    app.router.add_get("/v4/perpetualMarkets", markets)
    app.router.add_get("/v4/height", height)
    app.router.add_get("/v4/time", server_time)
    return app
