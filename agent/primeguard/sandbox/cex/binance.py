"""Binance simulator: spot ``/api/v3``, USDⓈ-M futures ``/fapi``, wallet and sub-account ``/sapi``.

Wire format and error codes as documented by Binance: signed requests carry ``X-MBX-APIKEY`` and
``signature`` = hex HMAC-SHA256 of the query string (plus body) with the secret; ``timestamp``
must be within ``recvWindow`` (-1021); a bad signature is -1022; an unknown key, a request from an
IP the key is not bound to, or a key lacking the permission is -2015 (HTTP 401, one code for all
three, as on the real venue); master-only endpoints answer -1002 to sub-account keys; a
withdrawal to an address off an enabled whitelist is -4035.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from primeguard.sandbox.cex import withdrawals
from primeguard.sandbox.cex.http import Endpoint, SimRequest, SimResponse, d
from primeguard.sandbox.cex.state import (
    SimAccount,
    SimKey,
    SimMarket,
    SimOrder,
    SimPosition,
    VenueState,
    position_slot,
)

venue = "binance"
UNUSED_IP = "192.0.2.1"  # TEST-NET-1: never a real client


def err(code: int, msg: str, status: int = 400) -> SimResponse:
    return SimResponse(status, {"code": code, "msg": msg})


def _strip_signature(raw: str) -> tuple[str, str | None]:
    if not raw:
        return "", None
    parts = raw.split("&")
    sig = None
    kept = []
    for p in parts:
        if p.startswith("signature="):
            sig = p[len("signature="):]
        else:
            kept.append(p)
    return "&".join(kept), sig


def authenticate(state: VenueState, req: SimRequest) -> SimKey | SimResponse:
    api_key = req.headers.get("X-MBX-APIKEY", "")
    if not api_key:
        return err(-2014, "API-key format invalid.", 401)
    key = state.keys.get(api_key)
    if key is None or key.deleted:
        return err(-2015, "Invalid API-key, IP, or permissions for action.", 401)
    query, qsig = _strip_signature(req.raw_query)
    body, bsig = _strip_signature(req.body if "json" not in req.headers.get("Content-Type", "") else "")
    sig = qsig or bsig
    if sig is None:
        return err(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
    ts_raw = req.params.get("timestamp")
    try:
        ts = int(ts_raw or "")
        window = int(req.params.get("recvWindow", "5000"))
    except ValueError:
        return err(-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
    if window > 60000:
        return err(-1131, "recvWindow must be less than 60000")
    server = state.server_ms()
    if ts > server + 1000 or server - ts > window:
        return err(-1021, "Timestamp for this request is outside of the recvWindow.")
    expected = hmac.new(key.secret.encode(), (query + body).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, sig):
        return err(-1022, "Signature for this request is not valid.")
    if not key.ip_allowed(req.remote):  # an expired key still reads: its *trading* authority expired
        return err(-2015, f"Invalid API-key, IP, or permissions for action, request ip: {req.remote}", 401)
    return key


def denied(state: VenueState, req: SimRequest, key: SimKey, perm: str) -> SimResponse:
    if perm in ("master", "keys") and not state.account_of(key).is_master:
        return err(-1002, "You are not authorized to execute this request.", 401)
    return err(-2015, f"Invalid API-key, IP, or permissions for action, request ip: {req.remote}", 401)


def not_found(req: SimRequest) -> SimResponse:
    return SimResponse(404, "<html><body><h2>404 Not found</h2></body></html>")


def rate_limited(retry_after_s: int) -> SimResponse:
    return SimResponse(429, {"code": -1003, "msg": "Too many requests; current limit of IP(127.0.0.1) is 6000 "
                             "requests per minute. Please use the websocket for live updates to avoid polling "
                             "the API."}, {"Retry-After": str(retry_after_s)})


# --- public ---------------------------------------------------------------------------------------


def time_(state: VenueState, req: SimRequest) -> SimResponse:
    return SimResponse(200, {"serverTime": state.server_ms()})


def _filters(m: SimMarket, market: Literal["spot", "futures"]) -> list[dict[str, Any]]:
    """A symbol's filters, each in the shape of its ``filterType`` on that market: the minimum
    notional is spot's ``NOTIONAL`` (``minNotional``...) but USD-M's ``MIN_NOTIONAL`` (``notional``)."""
    notional: dict[str, Any] = (
        {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
         "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5}
        if market == "spot" else {"filterType": "MIN_NOTIONAL", "notional": "5"})
    return [
        {"filterType": "PRICE_FILTER", "minPrice": d(m.tick), "maxPrice": "10000000", "tickSize": d(m.tick)},
        {"filterType": "LOT_SIZE", "minQty": d(m.step), "maxQty": "100000", "stepSize": d(m.step)},
        {"filterType": "MARKET_LOT_SIZE", "minQty": d(m.step), "maxQty": "1000", "stepSize": d(m.step)},
        notional,
    ]


def spot_exchange_info(state: VenueState, req: SimRequest) -> SimResponse:
    symbols = []
    for m in state.markets.values():
        symbols.append({
            "symbol": f"{m.base}{m.quote}", "status": "TRADING", "baseAsset": m.base, "baseAssetPrecision": 8,
            "quoteAsset": m.quote, "quotePrecision": 8, "quoteAssetPrecision": 8, "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8, "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
            "icebergAllowed": True, "ocoAllowed": True, "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True, "cancelReplaceAllowed": True, "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False, "filters": _filters(m, "spot"), "permissions": [],
            "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        })
    return SimResponse(200, {"timezone": "UTC", "serverTime": state.server_ms(), "rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100}],
        "exchangeFilters": [], "symbols": symbols})


def _places(step: Decimal) -> int:
    exp = step.normalize().as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


def futures_exchange_info(state: VenueState, req: SimRequest) -> SimResponse:
    symbols = []
    for m in state.markets.values():
        symbols.append({
            "symbol": f"{m.base}{m.quote}", "pair": f"{m.base}{m.quote}", "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000, "onboardDate": 1569398400000, "status": "TRADING",
            "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000", "baseAsset": m.base,
            "quoteAsset": m.quote, "marginAsset": m.quote, "pricePrecision": _places(m.tick),
            "quantityPrecision": _places(m.step), "baseAssetPrecision": 8, "quotePrecision": 8,
            "underlyingType": "COIN", "underlyingSubType": [], "settlePlan": 0, "triggerProtect": "0.0500",
            "liquidationFee": "0.012500", "marketTakeBound": "0.05", "maxMoveOrderLimit": 10000,
            "filters": _filters(m, "futures"), "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        })
    return SimResponse(200, {"timezone": "UTC", "serverTime": state.server_ms(), "futuresType": "U_MARGINED",
                             "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                                             "intervalNum": 1, "limit": 2400}],
                             "exchangeFilters": [], "assets": [{"asset": "USDT", "marginAvailable": True,
                                                                "autoAssetExchange": "-10000"}],
                             "symbols": symbols})


# --- spot -----------------------------------------------------------------------------------------


def _market_of(state: VenueState, symbol: str | None) -> SimMarket | None:
    if not symbol:
        return None
    return next((m for m in state.markets.values() if f"{m.base}{m.quote}" == symbol), None)


def _spot_order_json(o: SimOrder) -> dict[str, Any]:
    status = {"open": "NEW", "filled": "FILLED", "canceled": "CANCELED", "expired": "EXPIRED"}[o.status]
    return {"symbol": o.symbol.replace("/", "").split(":")[0], "orderId": int(o.order_id), "orderListId": -1,
            "clientOrderId": o.client_id, "price": d(o.price or 0, 8), "origQty": d(o.amount, 8),
            "executedQty": d(o.filled, 8), "cummulativeQuoteQty": d(o.filled * (o.avg_price or 0), 8),
            "status": status, "timeInForce": o.tif, "type": o.type.upper(), "side": o.side.upper(),
            "stopPrice": "0.00000000", "icebergQty": "0.00000000", "time": o.created_ms,
            "updateTime": o.updated_ms, "isWorking": True, "workingTime": o.created_ms,
            "origQuoteOrderQty": "0.00000000", "selfTradePreventionMode": "NONE"}


def _spot_new_order_json(o: SimOrder) -> dict[str, Any]:
    """The FULL answer to a new spot order (Binance's default for LIMIT and MARKET): no ``time``,
    ``updateTime``, ``stopPrice`` or ``isWorking``, but ``transactTime`` and the ``fills``."""
    full = _spot_order_json(o)
    fills = [] if o.filled == 0 else [{"price": d(o.avg_price or 0, 8), "qty": d(o.filled, 8),
                                       "commission": "0.00000000", "commissionAsset": "BNB",
                                       "tradeId": int(o.order_id)}]
    return {"symbol": full["symbol"], "orderId": full["orderId"], "orderListId": -1, "clientOrderId": o.client_id,
            "transactTime": o.created_ms, "price": full["price"], "origQty": full["origQty"],
            "executedQty": full["executedQty"], "origQuoteOrderQty": "0.00000000",
            "cummulativeQuoteQty": full["cummulativeQuoteQty"], "status": full["status"],
            "timeInForce": full["timeInForce"], "type": full["type"], "side": full["side"],
            "workingTime": o.created_ms, "fills": fills, "selfTradePreventionMode": "NONE"}


def _spot_cancel_json(o: SimOrder, cancel_id: str) -> dict[str, Any]:
    """One row of the answer to ``DELETE /api/v3/openOrders``: the cancel shape (``origClientOrderId``
    is the order's id, ``clientOrderId`` the cancel's own, ``transactTime`` when it was cancelled), not
    the query shape (no ``time``, ``updateTime``, ``stopPrice``, ``isWorking``...)."""
    full = _spot_order_json(o)
    return {"symbol": full["symbol"], "origClientOrderId": o.client_id, "orderId": full["orderId"],
            "orderListId": -1, "clientOrderId": cancel_id, "transactTime": o.updated_ms, "price": full["price"],
            "origQty": full["origQty"], "executedQty": full["executedQty"],
            "cummulativeQuoteQty": full["cummulativeQuoteQty"], "status": full["status"],
            "timeInForce": full["timeInForce"], "type": full["type"], "side": full["side"],
            "selfTradePreventionMode": "NONE"}


def spot_account(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    acct = state.account_of(key)
    balances = []
    assets = set(acct.spot) | {"USDT"}
    for asset in sorted(assets):
        total = acct.spot.get(asset, Decimal(0))
        locked = acct.spot_locked(asset)
        balances.append({"asset": asset, "free": d(total - locked, 8), "locked": d(locked, 8)})
    return SimResponse(200, {
        "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
        "commissionRates": {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000",
                            "seller": "0.00000000"},
        "canTrade": not acct.frozen, "canWithdraw": not acct.frozen, "canDeposit": True, "brokered": False,
        "requireSelfTradePrevention": False, "preventSor": False, "updateTime": state.server_ms(),
        "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"], "uid": int(acct.uid)})


def spot_open_orders(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    acct = state.account_of(key)
    sym = req.param("symbol")
    orders = [o for o in acct.open_orders("spot") if not o.margin and sym in (None, o.symbol.replace("/", ""))]
    return SimResponse(200, [_spot_order_json(o) for o in orders])


def spot_cancel_open_orders(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    acct = state.account_of(key)
    sym = req.param("symbol")
    if not sym:
        return err(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
    orders = [o for o in acct.open_orders("spot") if not o.margin and o.symbol.replace("/", "") == sym]
    if not orders:
        return err(-2011, "Unknown order sent.")
    out = []
    for o in orders:
        state.cancel(o)
        out.append(_spot_cancel_json(o, f"cancel{state.next_id()}"))
    return SimResponse(200, out)


def _find_order(acct: SimAccount, market: str, req: SimRequest) -> SimOrder | None:
    oid = req.param("orderId")
    cid = req.param("origClientOrderId")
    for o in reversed(acct.orders):
        if o.market == market and ((oid is not None and o.order_id == oid) or (cid is not None and o.client_id == cid)):
            return o
    return None


def _qty_price(req: SimRequest) -> tuple[Decimal, Decimal | None] | SimResponse:
    try:
        qty = Decimal(req.param("quantity") or "")
        price_raw = req.param("price")
        price = Decimal(price_raw) if price_raw else None
    except InvalidOperation:
        return err(-1100, "Illegal characters found in a parameter.")
    if not qty.is_finite() or qty <= 0 or (price is not None and (not price.is_finite() or price <= 0)):
        return err(-1013, "Invalid quantity.")
    return qty, price


def _order_params(state: VenueState, req: SimRequest) -> tuple[Any, Decimal, Decimal | None, str, str] | SimResponse:
    """Symbol, quantity, price, side and type of a new order, or the venue's error for bad ones."""
    m = _market_of(state, req.param("symbol"))
    if m is None:
        return err(-1121, "Invalid symbol.")
    parsed = _qty_price(req)
    if isinstance(parsed, SimResponse):
        return parsed
    qty, price = parsed
    side = (req.param("side") or "").lower()
    type_ = (req.param("type") or "").lower()
    if side not in ("buy", "sell") or type_ not in ("limit", "market"):
        return err(-1102, "Mandatory parameter 'side' or 'type' was not sent, was empty/null, or malformed.")
    return m, qty, price, side, type_


def spot_order(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    acct = state.account_of(key)
    parsed = _order_params(state, req)
    if isinstance(parsed, SimResponse):
        return parsed
    m, qty, price, side, type_ = parsed
    cid = req.param("newClientOrderId") or f"sim{state.next_id()}"
    if any(o.client_id == cid for o in acct.open_orders("spot")):
        return err(-2010, "Duplicate order sent.")
    need_asset, need = (m.quote, qty * (price or m.last)) if side == "buy" else (m.base, qty)
    if acct.spot.get(need_asset, Decimal(0)) - acct.spot_locked(need_asset) < need:
        return err(-2010, "Account has insufficient balance for requested action.")
    o = state.place_order(acct, base=m.base, market="spot", side=side, amount=qty, price=price,  # type: ignore[arg-type]
                          type_=type_, tif=req.param("timeInForce") or "GTC", reduce_only=False, client_id=cid)
    return SimResponse(200, _spot_new_order_json(o))


def spot_get_order(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    o = _find_order(state.account_of(key), "spot", req)
    return err(-2013, "Order does not exist.") if o is None else SimResponse(200, _spot_order_json(o))


def spot_cancel_order(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    o = _find_order(state.account_of(key), "spot", req)
    if o is None or o.status != "open":
        return err(-2011, "Unknown order sent.")
    state.cancel(o)  # answered in the cancel shape, as DELETE /api/v3/openOrders answers each order
    return SimResponse(200, _spot_cancel_json(o, req.param("newClientOrderId") or f"cancel{state.next_id()}"))


# --- USDⓈ-M futures ---------------------------------------------------------------------------------


def _position_side(acct: SimAccount, o: SimOrder) -> str:
    if acct.position_mode != "hedge" or o.leg is None:
        return "BOTH"
    return "LONG" if o.leg == "long" else "SHORT"


def _fut_order_json(acct: SimAccount, o: SimOrder, *, new: bool = False) -> dict[str, Any]:
    """A USDⓈ-M order. The answer to a new order carries ``cumQty`` and no ``time``; a queried
    order carries ``time`` and no ``cumQty`` (as the venue answers)."""
    status = {"open": "NEW", "filled": "FILLED", "canceled": "CANCELED", "expired": "EXPIRED"}[o.status]
    sym = o.symbol.split(":")[0].replace("/", "")
    out: dict[str, Any] = {
        "orderId": int(o.order_id), "symbol": sym, "status": status, "clientOrderId": o.client_id,
        "price": d(o.price or 0), "avgPrice": d(o.avg_price or 0), "origQty": d(o.amount),
        "executedQty": d(o.filled), "cumQty": d(o.filled), "cumQuote": d(o.filled * (o.avg_price or 0)),
        "timeInForce": o.tif, "type": o.type.upper(), "reduceOnly": o.reduce_only, "closePosition": False,
        "side": o.side.upper(), "positionSide": _position_side(acct, o), "stopPrice": "0",
        "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": o.type.upper(), "priceMatch": "NONE",
        "selfTradePreventionMode": "NONE", "goodTillDate": 0, "time": o.created_ms, "updateTime": o.updated_ms}
    del out["time" if new else "cumQty"]
    return out


def _pos_side(acct: SimAccount, p: SimPosition) -> str:
    """``BOTH`` in one-way mode; ``LONG``/``SHORT`` in hedge mode (the short leg's amount negative)."""
    if acct.position_mode != "hedge":
        return "BOTH"
    return "LONG" if p.size > 0 else "SHORT"


def _iso(state: VenueState, acct: SimAccount, p: SimPosition, with_pnl: bool) -> str:
    """Isolated margin (wallet, or wallet plus unrealized PnL) of an isolated position; "0" in cross."""
    if acct.margin_mode != "isolated":
        return "0"
    wallet = state.initial_margin(p)
    return d(wallet + state.upnl(p) if with_pnl else wallet, 8)


def fapi_account(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    acct = state.account_of(key)
    upnl = sum((state.upnl(p) for p in acct.positions.values()), Decimal(0))
    im = sum((state.initial_margin(p) for p in acct.positions.values()), Decimal(0))
    mm = sum((state.maint_margin(p) for p in acct.positions.values()), Decimal(0))
    assets = []
    wallet_total = Decimal(0)
    for asset in sorted(set(acct.futures) | {"USDT"}):
        wallet = acct.futures.get(asset, Decimal(0))
        wallet_total += wallet
        a_upnl = upnl if asset == "USDT" else Decimal(0)
        a_im = im if asset == "USDT" else Decimal(0)
        a_mm = mm if asset == "USDT" else Decimal(0)
        avail = max(Decimal(0), wallet + a_upnl - a_im)
        assets.append({"asset": asset, "walletBalance": d(wallet, 8), "unrealizedProfit": d(a_upnl, 8),
                       "marginBalance": d(wallet + a_upnl, 8), "maintMargin": d(a_mm, 8),
                       "initialMargin": d(a_im, 8), "positionInitialMargin": d(a_im, 8),
                       "openOrderInitialMargin": "0.00000000", "crossWalletBalance": d(wallet, 8),
                       "crossUnPnl": d(a_upnl, 8), "availableBalance": d(avail, 8),
                       "maxWithdrawAmount": d(avail, 8), "updateTime": state.server_ms()})
    positions = [{"symbol": f"{p.base}USDT", "positionSide": _pos_side(acct, p), "positionAmt": d(p.size),
                  "unrealizedProfit": d(state.upnl(p), 8), "isolatedMargin": _iso(state, acct, p, True), "notional":
                  d(p.size * state.markets[p.base].mark, 8), "isolatedWallet": _iso(state, acct, p, False),
                  "initialMargin": d(state.initial_margin(p), 8), "maintMargin": d(state.maint_margin(p), 8),
                  "updateTime": p.updated_ms} for p in acct.positions.values()]
    return SimResponse(200, {
        "totalInitialMargin": d(im, 8), "totalMaintMargin": d(mm, 8), "totalWalletBalance": d(wallet_total, 8),
        "totalUnrealizedProfit": d(upnl, 8), "totalMarginBalance": d(wallet_total + upnl, 8),
        "totalPositionInitialMargin": d(im, 8), "totalOpenOrderInitialMargin": "0.00000000",
        "totalCrossWalletBalance": d(wallet_total, 8), "totalCrossUnPnl": d(upnl, 8),
        "availableBalance": d(max(Decimal(0), wallet_total + upnl - im), 8),
        "maxWithdrawAmount": d(max(Decimal(0), wallet_total + upnl - im), 8), "assets": assets,
        "positions": positions})


def fapi_position_risk(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    acct = state.account_of(key)
    sym = req.param("symbol")
    out = []
    for p in acct.positions.values():
        if sym is not None and sym != f"{p.base}USDT":
            continue
        m = state.markets[p.base]
        out.append({"symbol": f"{p.base}USDT", "positionSide": _pos_side(acct, p), "positionAmt": d(p.size),
                    "entryPrice": d(p.entry), "breakEvenPrice": d(p.entry), "markPrice": d(m.mark, 8),
                    "unRealizedProfit": d(state.upnl(p), 8), "liquidationPrice": d(state.liquidation_price(p)),
                    "isolatedMargin": _iso(state, acct, p, True), "notional": d(p.size * m.mark, 8),
                    "marginAsset": "USDT", "isolatedWallet": _iso(state, acct, p, False),
                    "initialMargin": d(state.initial_margin(p), 8),
                    "maintMargin": d(state.maint_margin(p), 8),
                    "positionInitialMargin": d(state.initial_margin(p), 8), "openOrderInitialMargin": "0",
                    "adl": 1, "bidNotional": "0", "askNotional": "0", "updateTime": p.updated_ms})
    return SimResponse(200, out)


def fapi_leverage_bracket(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    out = []
    for m in state.markets.values():
        out.append({"symbol": f"{m.base}{m.quote}", "notionalCoef": 1.0, "brackets": [
            {"bracket": 1, "initialLeverage": 125, "notionalCap": 50000, "notionalFloor": 0,
             "maintMarginRatio": 0.004, "cum": 0.0},
            {"bracket": 2, "initialLeverage": 100, "notionalCap": 600000, "notionalFloor": 50000,
             "maintMarginRatio": 0.005, "cum": 50.0}]})
    sym = req.param("symbol")
    if sym is not None:
        out = [x for x in out if x["symbol"] == sym]
    return SimResponse(200, out)


def fapi_open_orders(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    acct = state.account_of(key)
    sym = req.param("symbol")
    orders = [o for o in acct.open_orders("futures") if sym is None or o.symbol.split(":")[0].replace("/", "") == sym]
    return SimResponse(200, [_fut_order_json(acct, o) for o in orders])


def fapi_cancel_all(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    acct = state.account_of(key)
    sym = req.param("symbol")
    if not sym:
        return err(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
    for o in acct.open_orders("futures"):
        if o.symbol.split(":")[0].replace("/", "") == sym:
            state.cancel(o)
    return SimResponse(200, {"code": 200, "msg": "The operation of cancel all open order is done."})


def fapi_get_order(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    acct = state.account_of(key)
    o = _find_order(acct, "futures", req)
    return err(-2013, "Order does not exist.") if o is None else SimResponse(200, _fut_order_json(acct, o))


def fapi_order(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    acct = state.account_of(key)
    parsed = _order_params(state, req)
    if isinstance(parsed, SimResponse):
        return parsed
    m, qty, price, side, type_ = parsed
    if type_ == "limit" and price is None:
        return err(-1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed.")
    if qty % m.step != 0 or (price is not None and price % m.tick != 0):
        return err(-1111, "Precision is over the maximum defined for this asset.")
    cid = req.param("newClientOrderId") or f"sim{state.next_id()}"
    if any(o.client_id == cid for o in acct.open_orders("futures")):
        return err(-4116, "ClientOrderId is duplicated.")
    reduce_only = (req.param("reduceOnly") or "false").lower() == "true"
    hedge = acct.position_mode == "hedge"
    position_side = req.param("positionSide") or "BOTH"
    if position_side not in ("BOTH", "LONG", "SHORT") or (position_side == "BOTH") == hedge:
        return err(-4061, "Order's position side does not match user's setting.")
    leg: Literal["long", "short"] | None = None
    if hedge:
        if req.param("reduceOnly") is not None:  # hedge mode closes by side; the venue refuses the flag
            return err(-1106, "Parameter 'reduceOnly' sent when not required.")
        leg = "long" if position_side == "LONG" else "short"
        reduce_only = (side == "sell") == (leg == "long")  # SELL on LONG / BUY on SHORT closes that leg
    pos = acct.positions.get(position_slot(m.base, leg))
    if reduce_only:
        if pos is None or (pos.size > 0) == (side == "buy"):
            return err(-2022, "ReduceOnly Order is rejected.")
        qty = min(qty, abs(pos.size))
    else:
        notional = qty * (price or m.last)
        wallet = acct.futures.get("USDT", Decimal(0))
        used = sum((state.initial_margin(p) for p in acct.positions.values()), Decimal(0))
        if wallet - used < notional / (pos.leverage if pos else 3):
            return err(-2019, "Margin is insufficient.")
    o = state.place_order(acct, base=m.base, market="futures", side=side, amount=qty, price=price,  # type: ignore[arg-type]
                          type_=type_, tif=req.param("timeInForce") or "GTC", reduce_only=reduce_only, client_id=cid,
                          leg=leg)
    return SimResponse(200, _fut_order_json(acct, o, new=True))


# --- sapi: key restrictions, withdrawals, sub-accounts -----------------------------------------------


def api_restrictions(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    p = key.perms
    out: dict[str, Any] = {
        "ipRestrict": bool(key.ips), "createTime": key.created_ms, "enableReading": "read" in p,
        "enableWithdrawals": "withdraw" in p, "enableInternalTransfer": "internal_transfer" in p,
        "enableMargin": "margin" in p, "enableFutures": "futures" in p,
        "permitsUniversalTransfer": "universal_transfer" in p, "enableVanillaOptions": "options" in p,
        "enableFixApiTrade": False, "enableFixReadOnly": False, "enableSpotAndMarginTrading": "spot" in p,
        "enablePortfolioMarginTrading": False,
    }
    if key.expires_ms is not None:
        out["tradingAuthorityExpirationTime"] = key.expires_ms
    out.update(state.key_answer_overrides.get(key.api_key, {}))
    return SimResponse(200, out)


def withdraw_address_list(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    acct = state.account_of(key)
    return SimResponse(200, [{"address": e.address, "addressTag": "", "coin": e.coin, "name": e.label,
                              "network": e.network, "origin": "", "originType": "others",
                              "whiteStatus": acct.whitelist_enabled} for e in acct.whitelist])


def withdraw_apply(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    acct = state.account_of(key)
    coin, address, amount_raw = req.param("coin"), req.param("address"), req.param("amount")
    if not coin or not address or not amount_raw:
        return err(-1102, "Mandatory parameter was not sent, was empty/null, or malformed.")
    try:
        amount = Decimal(amount_raw)
    except InvalidOperation:
        return err(-1100, "Illegal characters found in parameter 'amount'.")
    network = req.param("network")
    if acct.whitelist_enabled and not any(
        e.coin == coin and e.address.lower() == address.lower() and (network is None or e.network == network)
        for e in acct.whitelist
    ):
        return err(-4035, "This address is not on the whitelist. Please join and retry.")
    if acct.spot.get(coin, Decimal(0)) - acct.spot_locked(coin) < amount:
        return err(-4026, "You have insufficient balance.")
    acct.spot[coin] = acct.spot.get(coin, Decimal(0)) - amount
    wid = hashlib.sha256(f"{acct.uid}:{state.next_id()}".encode()).hexdigest()[:32]
    withdrawals.record(state, acct, wid=wid, coin=coin, address=address, amount=d(amount), network=network or "",
                       client_id=req.param("withdrawOrderId") or "")
    return SimResponse(200, {"id": wid})


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def withdraw_history(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    """``GET /sapi/v1/capital/withdraw/history``: the account's withdrawals, newest first, with the
    status as an integer (0 Email Sent, 1 Cancelled, 2 Awaiting Approval, 3 Rejected, 4 Processing,
    5 Failure, 6 Completed); ``info`` carries the failure reason, ``completeTime`` only once done."""
    acct = state.account_of(key)
    coin, order_id = req.param("coin"), req.param("withdrawOrderId")
    out = []
    for w in withdrawals.history(state, acct):
        if coin not in (None, w["coin"]) or order_id not in (None, w["client_id"]):
            continue
        row: dict[str, Any] = {"id": w["id"], "amount": w["amount"], "transactionFee": "0", "coin": w["coin"],
                               "status": w["status"], "address": w["address"], "txId": w["tx_id"],
                               "applyTime": _utc(w["created_ms"]), "network": w["network"], "transferType": 0,
                               "withdrawOrderId": w["client_id"], "info": w["reason"], "confirmNo": 0,
                               "walletType": 0, "txKey": ""}
        if w["status"] == 6:
            row["completeTime"] = _utc(w["updated_ms"])
        out.append(row)
    return SimResponse(200, out)


def sub_account_list(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    subs = [a for a in state.accounts.values() if not a.is_master]
    email = req.param("email")
    if email:
        subs = [a for a in subs if a.name == email]
    return SimResponse(200, {"subAccounts": [{"email": a.name, "isFreeze": a.frozen, "createTime": a.created_ms,
                                              "isManagedSubAccount": False, "isAssetManagementSubAccount": False}
                                             for a in subs]})


def _sub_key(state: VenueState, req: SimRequest) -> tuple[SimAccount, SimKey] | SimResponse:
    sub = state.sub_by_name(req.param("email") or "")
    if sub is None:
        return err(-12015, "Sub-account does not exist.")  # wording as the venue's sub-account errors
    target = state.keys.get(req.param("subAccountApiKey") or "")
    if target is None or target.account_uid != sub.uid or target.deleted:
        return err(-2015, "Invalid API-key, IP, or permissions for action.", 401)
    return sub, target


def _ip_json(target: SimKey) -> dict[str, Any]:
    return {"ipRestrict": "true" if target.ips else "false", "ipList": list(target.ips),
            "updateTime": target.created_ms, "apiKey": target.api_key}


def sub_api_ip_get(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    found = _sub_key(state, req)
    if isinstance(found, SimResponse):
        return found
    return SimResponse(200, _ip_json(found[1]))


def sub_api_ip_set(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    found = _sub_key(state, req)
    if isinstance(found, SimResponse):
        return found
    _, target = found
    status = req.param("status")
    if status == "1":
        target.ips = ()
    elif status == "2":
        ips = tuple(x.strip() for x in (req.param("ipAddress") or "").split(",") if x.strip())
        if not ips:
            return err(-1102, "Mandatory parameter 'ipAddress' was not sent, was empty/null, or malformed.")
        target.ips = ips
    else:
        return err(-1102, "Mandatory parameter 'status' was not sent, was empty/null, or malformed.")
    # the v2 answer carries ``status`` instead of ``ipRestrict``; ``ipList`` only while IPs are bound
    out: dict[str, Any] = {"status": status, "ipList": list(target.ips), "updateTime": target.created_ms,
                           "apiKey": target.api_key}
    if not target.ips:
        del out["ipList"]
    return SimResponse(200, out)


def broker_delete_sub_api(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    sub = state.sub_by_uid(req.param("subAccountId") or "")
    target = state.keys.get(req.param("subAccountApiKey") or "")
    if sub is None or target is None or target.account_uid != sub.uid or target.deleted:
        return err(-2015, "Invalid API-key, IP, or permissions for action.", 401)
    target.deleted = True
    return SimResponse(200, {})


def margin_open_orders(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    """``GET /sapi/v1/margin/openOrders`` (cross margin; ``isIsolated`` TRUE lists none here)."""
    acct = state.account_of(key)
    sym = req.param("symbol")
    if not any(o.margin for o in acct.orders):  # the simulator opens a margin account with its first order
        return err(-3003, "Margin account does not exist.")
    if (req.param("isIsolated") or "FALSE").upper() == "TRUE":
        return SimResponse(200, [])
    orders = [o for o in acct.open_orders("spot") if o.margin and sym in (None, o.symbol.replace("/", ""))]
    return SimResponse(200, [_margin_order_json(o) for o in orders])


# the spot query row's keys the margin endpoints do not send (the venue's margin order row lacks them)
_NOT_ON_MARGIN = frozenset({"orderListId", "origQuoteOrderQty", "workingTime"})


def _margin_order_json(o: SimOrder) -> dict[str, Any]:
    """A cross-margin order as ``GET /sapi/v1/margin/openOrders`` lists it: the spot query row with
    ``isIsolated`` and without ``orderListId``, ``origQuoteOrderQty`` or ``workingTime``."""
    row = {k: v for k, v in _spot_order_json(o).items() if k not in _NOT_ON_MARGIN}
    return {**row, "isIsolated": False}


def margin_cancel_open_orders(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    """``DELETE /sapi/v1/margin/openOrders``: every open cross-margin order of ``symbol``."""
    acct = state.account_of(key)
    sym = req.param("symbol")
    if not sym:
        return err(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
    orders = [o for o in acct.open_orders("spot") if o.margin and o.symbol.replace("/", "") == sym]
    if not orders:
        return err(-2011, "Unknown order sent.")
    out = []
    for o in orders:
        state.cancel(o)
        row = _spot_cancel_json(o, f"cancel{state.next_id()}")
        del row["transactTime"]  # the margin cancel row carries no transactTime
        out.append({"symbol": row.pop("symbol"), "isIsolated": False, **row})
    return SimResponse(200, out)


def premium_index(state: VenueState, req: SimRequest) -> SimResponse:
    """``GET /fapi/v1/premiumIndex``: the perpetual's mark price (one symbol, or all as a list)."""
    def row(m: SimMarket) -> dict[str, Any]:
        return {"symbol": f"{m.base}{m.quote}", "markPrice": d(m.mark, 8), "indexPrice": d(m.mark, 8),
                "estimatedSettlePrice": d(m.mark, 8), "lastFundingRate": "0.00010000", "interestRate": "0.00010000",
                "nextFundingTime": state.server_ms() // 28_800_000 * 28_800_000 + 28_800_000,
                "time": state.server_ms()}
    sym = req.param("symbol")
    if sym is None:
        return SimResponse(200, [row(m) for m in state.markets.values()])
    m = _market_of(state, sym)
    return err(-1121, "Invalid symbol.") if m is None else SimResponse(200, row(m))


def asset_transfer(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    """``POST /sapi/v1/asset/transfer`` (user universal transfer; the key needs "permits universal
    transfer"): only ``UMFUTURE_MAIN`` / ``MAIN_UMFUTURE`` are simulated; answers ``tranId``."""
    acct = state.account_of(key)
    if "universal_transfer" not in key.perms:
        return denied(state, req, key, "universal_transfer")
    kind, asset, amount_raw = req.param("type"), req.param("asset") or "", req.param("amount") or ""
    if kind not in ("UMFUTURE_MAIN", "MAIN_UMFUTURE"):
        return err(-1102, "Mandatory parameter 'type' was not sent, was empty/null, or malformed.")
    try:
        amount = Decimal(amount_raw)
    except InvalidOperation:
        return err(-1100, "Illegal characters found in parameter 'amount'.")
    src, dst = (acct.futures, acct.spot) if kind == "UMFUTURE_MAIN" else (acct.spot, acct.futures)
    used = sum((state.initial_margin(p) for p in acct.positions.values()), Decimal(0)) if src is acct.futures else 0
    if amount <= 0 or src.get(asset, Decimal(0)) - used < amount:
        return err(-5013, "Asset transfer failed: insufficient balance")
    src[asset] = src.get(asset, Decimal(0)) - amount
    dst[asset] = dst.get(asset, Decimal(0)) + amount
    return SimResponse(200, {"tranId": int(state.next_id())})


def sub_to_master(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    """``POST /sapi/v1/sub-account/transfer/subToMaster`` (sub-account key with internal transfer):
    spot wallet to the master's spot wallet; answers the venue's ``txnId``."""
    acct = state.account_of(key)
    if acct.is_master:
        return err(-1002, "You are not authorized to execute this request.", 401)
    asset, amount_raw = req.param("asset"), req.param("amount")
    if not asset or not amount_raw:
        return err(-1102, "Mandatory parameter was not sent, was empty/null, or malformed.")
    try:
        amount = Decimal(amount_raw)
    except InvalidOperation:
        return err(-1100, "Illegal characters found in parameter 'amount'.")
    t = state.move_to_master(acct, asset, amount, unified=False, transfer_id="")
    if t is None:
        return err(-4026, "You have insufficient balance.")
    return SimResponse(200, {"txnId": t.venue_id})


endpoints: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/v3/time", time_),
    Endpoint("GET", "/api/v3/exchangeInfo", spot_exchange_info),
    Endpoint("GET", "/api/v3/account", spot_account, True, "read"),
    Endpoint("GET", "/api/v3/openOrders", spot_open_orders, True, "read"),
    Endpoint("DELETE", "/api/v3/openOrders", spot_cancel_open_orders, True, "spot"),
    Endpoint("POST", "/api/v3/order", spot_order, True, "spot"),
    Endpoint("GET", "/api/v3/order", spot_get_order, True, "read"),
    Endpoint("DELETE", "/api/v3/order", spot_cancel_order, True, "spot"),
    Endpoint("GET", "/fapi/v1/time", time_),
    Endpoint("GET", "/fapi/v1/exchangeInfo", futures_exchange_info),
    Endpoint("GET", "/fapi/v1/premiumIndex", premium_index),
    Endpoint("GET", "/fapi/v3/account", fapi_account, True, "read"),
    Endpoint("GET", "/fapi/v3/positionRisk", fapi_position_risk, True, "read"),
    Endpoint("GET", "/fapi/v1/leverageBracket", fapi_leverage_bracket, True, "read"),
    Endpoint("GET", "/fapi/v1/openOrders", fapi_open_orders, True, "read"),
    Endpoint("DELETE", "/fapi/v1/allOpenOrders", fapi_cancel_all, True, "futures"),
    Endpoint("GET", "/fapi/v1/order", fapi_get_order, True, "read"),
    Endpoint("POST", "/fapi/v1/order", fapi_order, True, "futures"),
    Endpoint("GET", "/sapi/v1/account/apiRestrictions", api_restrictions, True, None),
    Endpoint("GET", "/sapi/v1/capital/withdraw/address/list", withdraw_address_list, True, "read"),
    Endpoint("POST", "/sapi/v1/capital/withdraw/apply", withdraw_apply, True, "withdraw"),
    Endpoint("GET", "/sapi/v1/capital/withdraw/history", withdraw_history, True, "read"),
    Endpoint("GET", "/sapi/v1/margin/openOrders", margin_open_orders, True, "read"),
    Endpoint("DELETE", "/sapi/v1/margin/openOrders", margin_cancel_open_orders, True, "margin"),
    Endpoint("GET", "/sapi/v1/sub-account/list", sub_account_list, True, "master"),
    Endpoint("POST", "/sapi/v1/sub-account/transfer/subToMaster", sub_to_master, True, "transfer"),
    Endpoint("POST", "/sapi/v1/asset/transfer", asset_transfer, True, "transfer"),
    Endpoint("GET", "/sapi/v1/sub-account/subAccountApi/ipRestriction", sub_api_ip_get, True, "keys"),
    Endpoint("POST", "/sapi/v2/sub-account/subAccountApi/ipRestriction", sub_api_ip_set, True, "keys"),
    Endpoint("DELETE", "/sapi/v1/broker/subAccountApi", broker_delete_sub_api, True, "keys"),
)
