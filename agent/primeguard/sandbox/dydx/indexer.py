"""dYdX v4 indexer simulator (aiohttp): the read endpoints primeguard uses, in the indexer's JSON
shapes (numbers as strings, perpetual sizes signed, asset sizes unsigned with a side) and with the
status codes of v4-chain's comlink controllers (``indexer/services/comlink/src/controllers/api/v4``):

- request validation first: an address that is not alphanumeric (≤ 90 characters) or a bad
  subaccount number → 400 with express-validator's error list;
- then the geo-block (403) on the address routes only (addresses, perpetualPositions,
  assetPositions, transfers); markets, height and time are never geo-blocked;
- unknown address → 404 on ``/addresses/{address}``; unknown subaccount → 404 on the subaccount
  route, ``/assetPositions`` and ``/transfers``, but 200 with an empty list on ``/perpetualPositions``;
- ``/perpetualPositions`` has no default status filter (OPEN and CLOSED) and lists the most
  recently opened first; ``/transfers`` lists newest first and adds ``pageSize``, ``totalResults``
  and ``offset`` when ``page`` is given; an unknown ``ticker`` → 404.

Plus the scenario's injected faults."""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from primeguard.domain.money import decimal_str
from primeguard.sandbox.dydx.state import BASE_HEIGHT, ClosedPerp, DydxWorld, OrderRec, SubState

GEOBLOCK_BODY = {"errors": [{
    "code": "GEOBLOCKED",
    "msg": ("Because you appear to be a resident of, or trading from, a jurisdiction that violates our terms "
            "of use, or have engaged in activity that violates our terms of use, you have been blocked. You may "
            "withdraw your funds from the protocol at any time."),
}]}
API_LIMIT = 1000  # comlink's API_LIMIT_V4 default
MAX_SUBACCOUNT = 128_000
POSITION_STATUSES = ("OPEN", "CLOSED", "LIQUIDATED")
MALFORMED_BODY = '{"subaccount": {"equity": "12'  # truncated JSON, served as application/json


def _s(value: Decimal) -> str:
    return decimal_str(value)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(status: int, msg: str, **extra: Any) -> web.Response:
    return web.json_response({"errors": [{"msg": msg, **extra}]}, status=status)


def _invalid(value: Any, msg: str, path: str, location: str) -> web.Response:
    """express-validator's 400: ``{"errors": [{type, value, msg, path, location}]}``."""
    item = {"type": "field", "msg": msg, "path": path, "location": location}
    if value is not None:
        item["value"] = value
    return web.json_response({"errors": [item]}, status=400)


def valid_address(address: str) -> bool:
    """comlink's ``isValidAddress``: at most 90 characters, all ASCII letters and digits."""
    return len(address) <= 90 and all(c.isascii() and c.isalnum() for c in address)


def valid_subaccount_number(raw: str) -> bool:
    return raw.isascii() and raw.isdigit() and int(raw) <= MAX_SUBACCOUNT


def build_app(world: DydxWorld) -> web.Application:
    box = world.faults["dydx"]

    @web.middleware
    async def faults(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.transport is not None:
            box.note_peer(request.transport.get_extra_info("peername"))
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

    def geo_blocked() -> web.Response | None:
        """complianceAndGeoCheck: runs after validation, on the address routes only."""
        with world.lock:
            blocked = world.geo_blocked
        return web.json_response(GEOBLOCK_BODY, status=403) if blocked else None

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

    def closed_json(number: int, c: ClosedPerp) -> dict[str, Any]:
        return {
            "market": c.market, "status": "CLOSED", "side": "LONG" if c.size > 0 else "SHORT", "size": "0",
            "maxSize": _s(abs(c.size)), "entryPrice": _s(c.entry), "exitPrice": _s(c.exit),
            "realizedPnl": _s(c.size * (c.exit - c.entry)), "unrealizedPnl": "0", "createdAt": _iso(world.started),
            "createdAtHeight": str(BASE_HEIGHT), "closedAt": _iso(c.closed_at), "sumOpen": _s(abs(c.size)),
            "sumClose": _s(abs(c.size)), "netFunding": "0", "subaccountNumber": number,
        }

    def lookup(request: web.Request) -> tuple[str, int] | web.Response:
        """CheckSubaccountSchema on query parameters."""
        address = request.query.get("address")
        if address is None or not valid_address(address):
            return _invalid(address, "address must be a valid dydx address", "address", "query")
        raw = request.query.get("subaccountNumber")
        if raw is None or not valid_subaccount_number(raw):
            return _invalid(raw, "subaccountNumber must be a non-negative integer less than 128001",
                            "subaccountNumber", "query")
        return address, int(raw)

    def limit_of(request: web.Request) -> int | web.Response:
        raw = request.query.get("limit")
        if raw is None:
            return API_LIMIT
        if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) <= API_LIMIT:
            return _invalid(raw, f"limit must be a positive integer that is not greater than max: {API_LIMIT}",
                            "limit", "query")
        return int(raw)

    def not_found_sub(address: str, number: int) -> web.Response:
        return _error(404, f"No subaccount found with address {address} and subaccountNumber {number}")

    async def subaccount(request: web.Request) -> web.Response:
        address = request.match_info["address"]
        raw = request.match_info["number"]
        if not valid_address(address):
            return _invalid(address, "address must be a valid dydx address", "address", "params")
        if not valid_subaccount_number(raw):
            return _invalid(raw, "subaccountNumber must be a non-negative integer less than 128001",
                            "subaccountNumber", "params")
        if (blocked := geo_blocked()) is not None:
            return blocked
        number = int(raw)
        with world.lock:
            st = world.account(address)
            if st is None or number not in st.subaccounts:
                return not_found_sub(address, number)
            body = {"subaccount": sub_json(address, st.subaccounts[number])}
        return web.json_response(body)

    async def address_view(request: web.Request) -> web.Response:
        address = request.match_info["address"]
        if not valid_address(address):
            return _invalid(address, "address must be a valid address", "address", "params")
        if (blocked := geo_blocked()) is not None:
            return blocked
        with world.lock:
            st = world.account(address)
            if st is None or not st.subaccounts:
                return _error(404, f"No subaccounts found for address {address}")
            subs = [sub_json(address, st.subaccounts[n]) for n in sorted(st.subaccounts)]
        return web.json_response({"subaccounts": subs, "totalTradingRewards": "0"})

    async def perpetual_positions(request: web.Request) -> web.Response:
        found = lookup(request)
        if isinstance(found, web.Response):
            return found
        address, number = found
        limit = limit_of(request)
        if isinstance(limit, web.Response):
            return limit
        wanted: set[str] | None = None
        raw_status = request.query.getall("status", [])
        if raw_status:
            wanted = {s.strip() for r in raw_status for s in r.split(",") if s.strip()}
            if not wanted <= set(POSITION_STATUSES):
                return _invalid(raw_status, "status must be a valid Position Status (OPEN, etc)", "status", "query")
        if (blocked := geo_blocked()) is not None:
            return blocked
        with world.lock:
            st = world.account(address)
            sub = st.subaccounts.get(number) if st is not None else None
            rows: list[tuple[int, dict[str, Any]]] = []
            if sub is not None:  # no subaccount: an empty list, not a 404
                for m, (size, entry) in sub.perps.items():
                    if size != 0:
                        rows.append((sub.opened.get(m, 0), perp_json(number, m, size, entry, world.price(m, entry))))
                rows.extend((c.seq, closed_json(number, c)) for c in sub.closed)
        rows.sort(key=lambda r: -r[0])  # openEventId DESC: most recently opened first
        out = [r for _, r in rows if wanted is None or r["status"] in wanted][:limit]
        return web.json_response({"positions": out})

    async def asset_positions(request: web.Request) -> web.Response:
        found = lookup(request)
        if isinstance(found, web.Response):
            return found
        address, number = found
        if (blocked := geo_blocked()) is not None:
            return blocked
        with world.lock:
            st = world.account(address)
            if st is None or number not in st.subaccounts:
                return not_found_sub(address, number)
            assets = sub_json(address, st.subaccounts[number])["assetPositions"]
        return web.json_response({"positions": list(assets.values())})

    async def transfers(request: web.Request) -> web.Response:
        found = lookup(request)
        if isinstance(found, web.Response):
            return found
        address, number = found
        limit = limit_of(request)
        if isinstance(limit, web.Response):
            return limit
        raw_page = request.query.get("page")
        if raw_page is not None and not (raw_page.isascii() and raw_page.isdigit() and int(raw_page) > 0):
            return _invalid(raw_page, "page must be a non-negative integer", "page", "query")
        if (blocked := geo_blocked()) is not None:
            return blocked
        with world.lock:
            st = world.account(address)
            if st is None or number not in st.subaccounts:
                return not_found_sub(address, number)
            rows = [dict(t) for t in st.transfers if t.get("_number") == number]
        rows.sort(key=lambda t: -int(t.get("_seq", 0)))  # newest first
        for t in rows:
            t.pop("_number", None)
            t.pop("_seq", None)
        if raw_page is None:
            return web.json_response({"transfers": rows[:limit]})
        offset = (int(raw_page) - 1) * limit
        return web.json_response({"transfers": rows[offset:offset + limit], "pageSize": limit,
                                  "totalResults": len(rows), "offset": offset})

    def order_json(address: str, number: int, o: OrderRec) -> dict[str, Any]:
        status = o.status
        if status == "OPEN" and o.flags == 0:
            status = "BEST_EFFORT_OPENED"  # short-term orders live in memory until they match
        uid = hashlib.sha256(f"{address}/{number}/{o.client_id}/{o.flags}/{o.clob_pair_id}".encode()).hexdigest()
        return {
            "id": f"{uid[:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:32]}",
            "subaccountId": hashlib.sha256(f"{address}/{number}".encode()).hexdigest()[:32],
            "clientId": str(o.client_id), "clobPairId": str(o.clob_pair_id), "side": o.side, "size": _s(o.size),
            "totalFilled": _s(o.filled), "price": _s(o.price), "type": "LIMIT", "status": status,
            "timeInForce": "IOC" if o.ioc else "GTT", "reduceOnly": o.reduce_only, "postOnly": False,
            "orderFlags": str(o.flags), "goodTilBlock": None if o.good_til_block is None else str(o.good_til_block),
            "goodTilBlockTime": None if o.good_til_block_time is None else _iso(o.good_til_block_time),
            "createdAtHeight": str(o.created_height), "clientMetadata": "0", "ticker": o.market,
            "subaccountNumber": number, "removalReason": o.removal_reason, "_seq": o.seq,
        }

    async def orders(request: web.Request) -> web.Response:
        """``/v4/orders?address=&subaccountNumber=[&status=][&ticker=][&limit=]``: newest first."""
        found = lookup(request)
        if isinstance(found, web.Response):
            return found
        address, number = found
        limit = limit_of(request)
        if isinstance(limit, web.Response):
            return limit
        if (blocked := geo_blocked()) is not None:
            return blocked
        statuses = {x for x in request.query.get("status", "").split(",") if x}
        ticker = request.query.get("ticker")
        with world.lock:
            st = world.account(address)
            if st is None or number not in st.subaccounts:
                return not_found_sub(address, number)
            rows = [order_json(address, number, o) for o in st.subaccounts[number].orders.values()]
        rows = [r for r in rows if (not statuses or r["status"] in statuses) and (not ticker or r["ticker"] == ticker)]
        rows.sort(key=lambda r: -int(r["_seq"]))
        for r in rows:
            r.pop("_seq")
        return web.json_response(rows[:limit])

    async def markets(request: web.Request) -> web.Response:
        ticker = request.query.get("ticker") or request.query.get("market")
        if request.query.get("ticker") and request.query.get("market"):
            return _error(400, "Only one of ticker or market may be provided")
        limit = limit_of(request)
        if isinstance(limit, web.Response):
            return limit
        with world.lock:
            if ticker and ticker not in world.oracle:
                return _error(404, f"{ticker} not found in markets of type PERPETUAL")
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
                    "subticksPerTick": 100000, "marketType": "CROSS", "baseOpenInterest": "0",
                    "defaultFundingRate1H": "0",
                }
                if len(out) >= limit:
                    break
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
    app.router.add_get("/v4/orders", orders)
    app.router.add_get("/v4/perpetualMarkets", markets)
    app.router.add_get("/v4/height", height)
    app.router.add_get("/v4/time", server_time)
    return app
