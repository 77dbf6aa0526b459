"""Binance: spot + USDⓈ-M futures of a sub-account, its keys, its address book, its levers.

Everything Binance-specific lives here (see :mod:`primeguard.venues.cex.exchange` for the
interface). Facts this module relies on:

- ``urls['api']`` is a dict of full URLs: pointing at a server swaps scheme+host and keeps paths.
- ccxt skips Binance's per-market error tables on other hosts (``-4035`` would be a bare
  ``ExchangeError``) and, after a successful private call, maps ``-2015`` to ``DDoSProtection``:
  :data:`CODES` classifies every code itself; writes refine ``-2015`` with a probe.
- Weight limits are per IP across every key: :data:`WEIGHTS` feeds the venue-wide buckets.
- Liquidation: spot sells are limit IOC orders on ``/api/v3/order`` anchored on the USDⓈ-M mark
  price (``/fapi/v1/premiumIndex``); freed collateral is first brought from the USDⓈ-M wallet to
  spot (``/sapi/v1/asset/transfer`` UMFUTURE_MAIN) and goes to the master through
  ``/sapi/v1/sub-account/transfer/subToMaster`` with the sub-account's operator key.
- Key levers: an ordinary master may only restrict a sub-account key's IPs; pinning it to an unused
  address (TEST-NET-1) disables it, reversibly.
- Cancel-all covers spot (``/api/v3/openOrders``), cross margin (``/sapi/v1/margin/openOrders``)
  and USDⓈ-M futures (``/fapi/v1/allOpenOrders``), per symbol.
- Hedge mode: positions come as ``LONG``/``SHORT`` legs; a close names the leg in ``positionSide``
  (and must not send ``reduceOnly``, which the venue rejects in hedge mode).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlsplit

from primeguard.config.schema import CexAccountConfig
from primeguard.domain.errors import (
    AddressNotWhitelisted,
    InsufficientFunds,
    VenueAuthError,
    VenueBadResponse,
    VenuePermissionDenied,
    VenueRateLimited,
    VenueUnavailable,
)
from primeguard.domain.model import Balance, Capability, Holder, Position, VenueKind
from primeguard.domain.money import decimal_str, to_decimal
from primeguard.domain.observation import WhitelistEntry, WhitelistStatus
from primeguard.venues.cex.errors import DuplicateClientOrderId, ReduceOnlyRejected, VenueNotFound
from primeguard.venues.cex.exchange import (
    CexExchange,
    CloseFill,
    ErrorKind,
    LeverItem,
    OpenPosition,
    PublicKeyOf,
    WhitelistAccess,
    fail_item,
    hedge_key,
    limit_guard,
)
from primeguard.venues.cex.limits import VenueLimits
from primeguard.venues.cex.markets import MarketBook, MarketInfo
from primeguard.venues.cex.normalize import (
    ZERO,
    KeyInfo,
    MonitorRead,
    as_list,
    bounded,
    dec,
    mark_quote,
    ms_time,
    opt_dec,
    shape,
)

NAME = "binance"
UNUSED_IP = "192.0.2.1"  # TEST-NET-1 (RFC 5737): never anyone's address

# --- error codes (documented; ccxt's own tables are skipped off Binance's hosts) -----------------------

CODES: dict[int, ErrorKind] = {
    -1000: VenueUnavailable, -1001: VenueUnavailable, -1006: VenueUnavailable, -1007: VenueUnavailable,
    -1008: VenueUnavailable, -1003: VenueRateLimited, -1015: VenueRateLimited,
    -1002: VenuePermissionDenied, -1021: VenueAuthError, -1022: VenueAuthError, -2014: VenueAuthError,
    -2015: VenueAuthError, -2008: VenueAuthError,
    -4035: AddressNotWhitelisted, -2019: InsufficientFunds, -4026: InsufficientFunds,
    -2011: VenueNotFound, -2013: VenueNotFound, -3003: VenueNotFound, -4116: DuplicateClientOrderId,
    -2022: ReduceOnlyRejected,
}

# --- request weights (documented per endpoint; unknown paths weigh 1) --------------------------------

WEIGHTS: dict[str, int] = {
    "/api/v3/account": 20, "/api/v3/exchangeInfo": 20, "/api/v3/openOrders": 6, "/api/v3/order": 1,
    "/fapi/v3/account": 5, "/fapi/v3/positionRisk": 5, "/fapi/v1/exchangeInfo": 1, "/fapi/v1/openOrders": 1,
    "/fapi/v1/leverageBracket": 1, "/fapi/v1/order": 1, "/fapi/v1/allOpenOrders": 1,
    "/sapi/v1/capital/withdraw/address/list": 10, "/sapi/v1/account/apiRestrictions": 1,
    "/sapi/v1/margin/openOrders": 10, "/sapi/v1/capital/withdraw/apply": 1,
    "/sapi/v1/sub-account/subAccountApi/ipRestriction": 20,
    "/sapi/v2/sub-account/subAccountApi/ipRestriction": 20,
}
NO_SYMBOL_WEIGHTS: dict[str, int] = {"/api/v3/openOrders": 80, "/fapi/v1/openOrders": 40}
BUDGETS: dict[str, int] = {"/api/": 6000, "/fapi/": 2400, "/sapi/": 12000}

# --- normalizers (pure) --------------------------------------------------------------------------------


@shape(NAME)
def balances(account_id: str, spot: Any, futures: Any, at: datetime) -> list[Balance]:
    """Spot (``/api/v3/account``) and USDⓈ-M (``/fapi/v3/account``) balances in asset units; in
    multi-asset margin mode every asset with a wallet balance is listed. Locked amounts never exceed
    what is held. Raises VenueBadResponse for a body of the wrong shape."""
    out: list[Balance] = []
    for b in as_list(spot["balances"], "balances", NAME):
        free, locked = dec(b["free"], "free"), dec(b["locked"], "locked")
        if free + locked != 0:
            total = free + locked
            out.append(Balance(account_id, str(b["asset"]), total, at, "binance:spot", locked=bounded(locked, total)))
    for a in as_list(futures["assets"], "assets", NAME):
        wallet = dec(a["walletBalance"], "walletBalance")  # excludes unrealized PnL (positions carry it)
        if wallet != 0:
            im = opt_dec(a.get("initialMargin"), "initialMargin") or ZERO
            out.append(Balance(account_id, str(a["asset"]), wallet, at, "binance:usdm", locked=bounded(im, wallet)))
    return out


_MARGIN = {"isolated": "isolated", "cross": "cross", "crossed": "cross"}


def _margin_mode(r: Mapping[str, Any]) -> str:
    """``marginType`` when the row carries it (v2 rows, symbol config), else the isolated wallet."""
    kind = r.get("marginType")
    if kind is not None:
        mode = _MARGIN.get(str(kind).lower())
        if mode is None:
            raise VenueBadResponse(f"marginType {str(kind)[:12]!r} is neither isolated nor cross", venue=NAME)
        return mode
    iso = (opt_dec(r.get("isolatedWallet"), "isolatedWallet") or ZERO,
           opt_dec(r.get("isolatedMargin"), "isolatedMargin") or ZERO)
    return "isolated" if any(x != 0 for x in iso) else "cross"


def _side_of(r: Mapping[str, Any], size: Decimal) -> str:
    side = str(r.get("positionSide", "BOTH"))
    if side not in ("BOTH", "LONG", "SHORT"):
        raise VenueBadResponse(f"positionSide {side[:10]!r} is not BOTH/LONG/SHORT", venue=NAME)
    if (side == "LONG" and size < 0) or (side == "SHORT" and size > 0):
        raise VenueBadResponse(f"{side} position with positionAmt of the other sign", venue=NAME)
    return side


@shape(NAME)
def positions(account_id: str, rows: Any, book: MarketBook, at: datetime, read: MonitorRead) -> None:
    """``/fapi/v3/positionRisk`` rows, one-way (``BOTH``) or hedge mode (``LONG``/``SHORT``, the
    short leg's ``positionAmt`` negative), cross or isolated; sizes in base units, signed."""
    for r in as_list(rows, "positionRisk", NAME):
        size = dec(r["positionAmt"], "positionAmt")
        if size == 0:
            continue
        _side_of(r, size)
        m = book.swap(str(r["symbol"]))
        if m is None:
            read.unsupported.append(str(r["symbol"]))
            continue
        mark = dec(r["markPrice"], "markPrice")
        liq = opt_dec(r.get("liquidationPrice"), "liquidationPrice")
        updated = ms_time(r.get("updateTime")) or at
        read.positions.append(Position(
            account_id, VenueKind.BINANCE, m.symbol, m.base, size, dec(r["entryPrice"], "entryPrice"), mark, at,
            "binance:usdm", unrealized_pnl=dec(r["unRealizedProfit"], "unRealizedProfit"),
            liquidation_price=None if liq == 0 else liq, margin_mode=_margin_mode(r)))
        read.prices.append(mark_quote(m.base, mark, NAME, m.symbol, updated, at))


_FLAGS: dict[str, tuple[Capability, ...]] = {
    "enableReading": (Capability.READ,),
    "enableSpotAndMarginTrading": (Capability.TRADE_SPOT,),
    "enableMargin": (Capability.TRADE_MARGIN,),
    "enableFutures": (Capability.TRADE_FUTURES,),
    "enableVanillaOptions": (Capability.TRADE_OPTIONS,),
    "enablePortfolioMarginTrading": (Capability.TRADE_MARGIN, Capability.TRADE_FUTURES),
    "enableWithdrawals": (Capability.WITHDRAW,),
    "enableInternalTransfer": (Capability.INTERNAL_TRANSFER,),
    "permitsUniversalTransfer": (Capability.UNIVERSAL_TRANSFER,),
    "enableFixApiTrade": (Capability.TRADE_SPOT,),
    "enableFixReadOnly": (Capability.READ,),
}


def key_info(raw: Any) -> KeyInfo:
    """``/sapi/v1/account/apiRestrictions``. Every ``enable*``/``permits*`` flag and ``ipRestrict``
    must be a JSON boolean; anything else (``"true"``, ``1``, null) makes the flag unknown (and the
    key able to do anything). Binance does not say whether a key is a master key (``is_master``
    None). Raises VenueBadResponse when ``ipRestrict`` is missing."""
    if not isinstance(raw, dict) or "ipRestrict" not in raw:
        raise VenueBadResponse("apiRestrictions answer lacks ipRestrict", venue=NAME)
    caps: set[Capability] = set()
    unknown: list[str] = []
    bad: list[str] = []
    for name, value in raw.items():
        if not (name in _FLAGS or name.startswith(("enable", "permits"))):
            continue
        if not isinstance(value, bool):
            bad.append(name)  # not the documented type: we cannot tell, so assume it is on
            continue
        if not value:
            continue
        if name in _FLAGS:
            caps.update(_FLAGS[name])
        else:
            unknown.append(name)  # a power we do not know: fail closed
    ip = raw["ipRestrict"]
    if not isinstance(ip, bool):
        bad.append("ipRestrict")
    if unknown or (set(bad) - {"ipRestrict"}):
        caps.add(Capability.UNKNOWN)
    try:
        expires = ms_time(raw.get("tradingAuthorityExpirationTime"))
    except VenueBadResponse:
        expires = None
        bad.append("tradingAuthorityExpirationTime")
    flags = {k: v for k, v in raw.items() if isinstance(v, bool)}
    return KeyInfo(frozenset(caps), ip if isinstance(ip, bool) else None, expires, None,
                   {"venue_flags": flags, "unknown_flags": unknown}, tuple(bad))


@shape(NAME)
def whitelist(rows: Any) -> WhitelistStatus:
    """``/sapi/v1/capital/withdraw/address/list``: ``whiteStatus`` says whether an entry is
    whitelisted; an empty book says nothing about the switch (``enabled`` None)."""
    if not isinstance(rows, list):
        raise VenueBadResponse("withdraw address list is not a list", venue=NAME)
    if not rows:
        return WhitelistStatus(enabled=None)
    white = [r for r in rows if r.get("whiteStatus") is True]
    entries = tuple(WhitelistEntry(str(r["coin"]), str(r.get("network", "")), str(r["address"]),
                                   str(r.get("name", "")), str(r.get("addressTag") or "")) for r in white)
    return WhitelistStatus(enabled=bool(white), entries=entries)


def _fmt(x: Decimal) -> str:
    return decimal_str(x)


# GET /sapi/v1/capital/withdraw/history ``status``
WITHDRAWAL_STATES: Mapping[str, tuple[str, str]] = {"0": ("pending", "Email Sent"), "1": ("failed", "Cancelled"),
    "2": ("pending", "Awaiting Approval"), "3": ("failed", "Rejected"), "4": ("pending", "Processing"),
    "5": ("failed", "Failure"), "6": ("confirmed", "Completed")}


class Binance(CexExchange):
    """Binance behind :class:`CexExchange`."""

    name = NAME
    codes = CODES
    refused_codes = frozenset({"-2015", "-2008"})  # invalid key, IP or permission; unknown key id
    whitelist_access = WhitelistAccess.MONITOR
    withdrawal_states = WITHDRAWAL_STATES
    withdrawal_reason_field = "info"

    def ccxt_options(self) -> dict[str, Any]:
        return {"fetchMarkets": {"types": ["spot", "linear"]}, "fetchMargins": False, "fetchCurrencies": False,
                "adjustForTimeDifference": False, "recvWindow": 5000}

    def point_at(self, ex: Any, scheme: str, netloc: str) -> None:
        origin = f"{scheme}://{netloc}"
        ex.urls["api"] = {k: origin + urlsplit(v).path for k, v in ex.urls["api"].items() if isinstance(v, str)}

    def exact(self, market: Mapping[str, Any]) -> tuple[Decimal | None, Decimal | None, Decimal]:
        tick = step = None
        for f in (market.get("info") or {}).get("filters", []):
            if f.get("filterType") == "PRICE_FILTER":
                tick = to_decimal(f["tickSize"], what="tickSize")
            elif f.get("filterType") == "LOT_SIZE":
                step = to_decimal(f["stepSize"], what="stepSize")
        return tick, step, Decimal(1)

    # --- errors and limits ---

    def error_code(self, response: Any) -> tuple[str | None, str]:
        item = response[0] if isinstance(response, list) and len(response) == 1 else response
        if isinstance(item, dict) and "code" in item and str(item["code"]) not in ("0", "200"):
            return str(item["code"]), str(item.get("msg", ""))
        return None, ""

    def limiter_path(self, ex: Any, api: Any, path: str) -> str:
        if not isinstance(api, str):
            return ""
        return str(urlsplit(ex.urls["api"].get(api, "")).path) + "/" + str(path)

    def request_weight(self, path: str, query: str) -> tuple[str | None, int]:
        prefix = next((p for p in BUDGETS if path.startswith(p)), None)
        if prefix is None:
            return None, 0
        if path in NO_SYMBOL_WEIGHTS and "symbol=" not in query:
            return prefix, NO_SYMBOL_WEIGHTS[path]
        return prefix, WEIGHTS.get(path, 1)

    def default_limits(self) -> VenueLimits:
        return VenueLimits(16, dict(BUDGETS))

    async def write(self, ex: Any, call: Awaitable[Any]) -> Any:
        """Run a write; refine its ambiguous -2015 with a probe: if the same key can still read its
        own restrictions, the key is valid and the answer meant "no permission".

        Raises:
            VenuePermissionDenied: -2015 from a key that is otherwise valid; the original error else.
        """
        try:
            return await call
        except VenueAuthError as exc:
            if exc.code != "-2015":
                raise
            try:
                await ex.sapiGetAccountApiRestrictions()
            except Exception:
                raise exc from None
            raise VenuePermissionDenied("the key is valid but lacks the permission for this action", venue=NAME,
                                        code="-2015") from None

    # --- reads ---

    async def inspect_key(self, ex: Any) -> KeyInfo:
        return key_info(await ex.sapiGetAccountApiRestrictions())

    async def read_account(self, ex: Any, book: MarketBook, account_id: str, at: datetime,
                           read: MonitorRead) -> None:
        # Cheapest first: ccxt throttles each key's calls by their cost in the order they are issued.
        fut, risk, spot = await asyncio.gather(ex.fapiPrivateV3GetAccount(), ex.fapiPrivateV3GetPositionRisk(),
                                               ex.privateGetAccount())
        read.balances.extend(balances(account_id, spot, fut, at))
        positions(account_id, risk, book, at, read)

    async def read_whitelist(self, ex: Any) -> WhitelistStatus:
        return whitelist(await ex.sapiGetCapitalWithdrawAddressList())

    # --- levers ---

    async def cancel_all(self, ex: Any) -> list[LeverItem]:
        items: list[LeverItem] = []
        async def margin_orders() -> Any:
            try:
                return await ex.sapiGetMarginOpenOrders()
            except VenueNotFound:  # -3003: the sub-account has no margin account, so no margin orders
                return []

        spot, margin, fut = await asyncio.gather(ex.privateGetOpenOrders(), margin_orders(),
                                                 ex.fapiPrivateGetOpenOrders())
        for market, rows, call in (("spot", spot, ex.privateDeleteOpenOrders),
                                   ("margin", margin, ex.sapiDeleteMarginOpenOrders),
                                   ("futures", fut, ex.fapiPrivateDeleteAllOpenOrders)):
            for sym in sorted({str(r["symbol"]) for r in rows}):
                n = sum(1 for r in rows if r["symbol"] == sym)
                target = f"{market}:{sym}"
                try:
                    await self.write(ex, call({"symbol": sym}))
                    items.append(LeverItem(target, "done", f"cancelled {n} open order(s)"))
                except VenueNotFound:
                    items.append(LeverItem(target, "already_done", "no open orders left"))
                except Exception as exc:
                    items.append(fail_item(target, exc, NAME))
        return items

    async def open_positions(self, ex: Any, book: MarketBook) -> list[OpenPosition]:
        out: list[OpenPosition] = []
        for r in await ex.fapiPrivateV3GetPositionRisk():
            size = to_decimal(r["positionAmt"], what="positionAmt")
            if size == 0:
                continue
            side = _side_of(r, size)
            leg: Literal["long", "short"] | None = None if side == "BOTH" else ("long" if side == "LONG" else "short")
            sym = str(r["symbol"])
            m = book.swap(sym)
            out.append(OpenPosition(
                key=hedge_key(m.symbol if m else sym, leg), venue_id=sym, size=abs(size),
                close_side="sell" if size > 0 else "buy", mark=to_decimal(r["markPrice"], what="markPrice"),
                leg=None if side == "BOTH" else side, market=m, raw=r,
                problem=None if m else "instrument unknown to primeguard"))
        return out

    async def prior_close(self, ex: Any, pos: OpenPosition, cid: str) -> str | None:
        try:
            prior = await ex.fapiPrivateGetOrder({"symbol": pos.venue_id, "origClientOrderId": cid})
        except VenueNotFound:
            return None
        return str(prior.get("status"))

    def close_guard(self, pos: OpenPosition, cap: Decimal) -> tuple[Decimal | None, str | None]:
        return limit_guard(pos, cap)

    async def place_close(self, ex: Any, pos: OpenPosition, cid: str, price: Decimal | None) -> CloseFill:
        assert price is not None  # close_guard always gives a limit price here
        order: dict[str, Any] = {"symbol": pos.venue_id, "side": pos.close_side.upper(), "type": "LIMIT",
                                 "timeInForce": "IOC", "quantity": _fmt(pos.size), "price": _fmt(price),
                                 "newClientOrderId": cid}
        if pos.leg is None:
            order["reduceOnly"] = "true"
        else:  # hedge mode: the leg closes by its side; the venue refuses reduceOnly there
            order["positionSide"] = pos.leg
        res = await self.write(ex, ex.fapiPrivatePostOrder(order))
        return CloseFill(to_decimal(res.get("executedQty", "0"), what="executedQty"), str(res.get("status")))

    async def disable_client_keys(self, ex: Any, account: CexAccountConfig,
                                  public_key: PublicKeyOf) -> list[LeverItem]:
        items: list[LeverItem] = []
        for c in account.credentials:
            if c.holder != Holder.CLIENT:
                continue
            target = f"key:{c.id}"
            try:
                q = {"email": account.sub_account, "subAccountApiKey": public_key(c.id)}
                cur = await ex.sapiGetSubAccountSubAccountApiIpRestriction(dict(q))
                ips = [str(x) for x in cur.get("ipList") or []]
                if ips == [UNUSED_IP]:
                    items.append(LeverItem(target, "already_done", f"already pinned to {UNUSED_IP}"))
                    continue
                await self.write(ex, ex.sapiV2PostSubAccountSubAccountApiIpRestriction(
                    {**q, "status": "2", "ipAddress": UNUSED_IP}))
                items.append(LeverItem(target, "done", f"pinned to unused IP {UNUSED_IP}; previous IPs: "
                                       f"{', '.join(ips) or 'none'}"))
            except Exception as exc:
                items.append(fail_item(target, exc, NAME))
        return items

    async def refused_key_state(self, ex: Any, account: CexAccountConfig, api_key: str) -> str | None:
        """Pinned to :data:`UNUSED_IP` only (the sub-account API IP restriction, read with the
        key-managing credential): nobody can use the key. Any other list: the key may still work
        from an address primeguard does not have, so the venue's refusal proves nothing."""
        cur = await ex.sapiGetSubAccountSubAccountApiIpRestriction(
            {"email": account.sub_account, "subAccountApiKey": api_key})
        ips = [str(x) for x in cur.get("ipList") or []]
        return f"pinned to unused IP {UNUSED_IP}" if ips == [UNUSED_IP] else None

    async def spot_free(self, ex: Any) -> dict[str, Decimal]:
        rows = as_list((await ex.privateGetAccount())["balances"], "balances", NAME)
        free = {str(b["asset"]): to_decimal(b["free"], what="free") for b in rows}
        return {a: q for a, q in free.items() if q > 0}

    async def reference_price(self, ex: Any, book: MarketBook, base: str, quote: str) -> Decimal:
        res = await ex.fapiPublicGetPremiumIndex({"symbol": f"{base}{quote}"})
        return to_decimal(res["markPrice"], what="markPrice")

    async def prior_spot_order(self, ex: Any, market: MarketInfo, cid: str) -> CloseFill | None:
        try:
            o = await ex.privateGetOrder({"symbol": market.id, "origClientOrderId": cid})
        except VenueNotFound:
            return None
        return CloseFill(to_decimal(o.get("executedQty", "0"), what="executedQty"), str(o.get("status")))

    async def place_spot_sell(self, ex: Any, market: MarketInfo, qty: Decimal, price: Decimal,
                              cid: str) -> CloseFill:
        res = await self.write(ex, ex.privatePostOrder({
            "symbol": market.id, "side": "SELL", "type": "LIMIT", "timeInForce": "IOC", "quantity": _fmt(qty),
            "price": _fmt(price), "newClientOrderId": cid, "newOrderRespType": "FULL"}))
        return CloseFill(to_decimal(res.get("executedQty", "0"), what="executedQty"), str(res.get("status")))

    async def consolidate(self, ex: Any, asset: str) -> str | None:
        """USDⓈ-M wallet → spot wallet (``/sapi/v1/asset/transfer`` type ``UMFUTURE_MAIN``) of what the
        futures account lets go (``maxWithdrawAmount``)."""
        fut = await ex.fapiPrivateV3GetAccount()
        row = next((a for a in as_list(fut["assets"], "assets", NAME) if a.get("asset") == asset), None)
        amount = ZERO if row is None else to_decimal(row.get("maxWithdrawAmount") or "0", what="maxWithdrawAmount")
        if amount <= 0:
            return None
        res = await self.write(ex, ex.sapiPostAssetTransfer({"type": "UMFUTURE_MAIN", "asset": asset,
                                                              "amount": _fmt(amount)}))
        tran = res.get("tranId") if isinstance(res, dict) else None
        return f"moved {_fmt(amount)} {asset} from the USDⓈ-M wallet to spot (transfer {tran})"

    async def transfer_to_master(self, ex: Any, account: CexAccountConfig, asset: str, amount: Decimal,
                                 transfer_id: str) -> str:
        """``/sapi/v1/sub-account/transfer/subToMaster`` with the sub-account's operator key (needs
        "internal transfer"). Binance takes no client transfer id here: the free balance read just
        before is the guard against a second transfer."""
        res = await self.write(ex, ex.sapiPostSubAccountTransferSubToMaster({"asset": asset,
                                                                              "amount": _fmt(amount)}))
        return str(res.get("txnId", "")) if isinstance(res, dict) else ""

    async def submit_withdrawal(self, ex: Any, *, asset: str, amount: Decimal, address: str, network: str,
                                request_id: str) -> str | None:
        res = await self.write(ex, ex.sapiPostCapitalWithdrawApply({
            "coin": asset, "address": address, "amount": decimal_str(amount), "network": network,
            "withdrawOrderId": request_id}))
        wid = res.get("id") if isinstance(res, dict) else None
        return None if wid in (None, "") else str(wid)


EXCHANGE = Binance()
