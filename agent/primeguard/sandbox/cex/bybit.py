"""Bybit v5 simulator: market time/instruments, unified wallet, positions, orders, key info,
withdrawal address book and withdrawals, sub-member freeze.

Signed requests carry ``X-BAPI-API-KEY``, ``X-BAPI-TIMESTAMP``, ``X-BAPI-RECV-WINDOW`` and
``X-BAPI-SIGN`` = hex HMAC-SHA256 of timestamp + key + recv window + (query string | JSON body).
Errors use Bybit ``retCode``s: 10003 invalid key, 10004 bad signature, 10002 timestamp outside the
window, 10010 IP not bound, 10005 missing permission, 33004 expired key, 10006 rate limit, 131093
withdrawal address not on the whitelist, 110072 duplicate ``orderLinkId``, 110017 reduce-only
without a position. A frozen sub-member's keys may still read but not trade or withdraw.
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
    SimTransfer,
    VenueState,
    position_slot,
)

venue = "bybit"


def ok(state: VenueState, result: dict[str, Any]) -> SimResponse:
    return SimResponse(200, {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {},
                             "time": state.server_ms()})


def err(code: int, msg: str, status: int = 200) -> SimResponse:
    return SimResponse(status, {"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {},
                                "time": int(datetime.now(UTC).timestamp() * 1000)})


def authenticate(state: VenueState, req: SimRequest) -> SimKey | SimResponse:
    h = req.headers
    api_key = h.get("X-BAPI-API-KEY", "")
    key = state.keys.get(api_key)
    if key is None or key.deleted:
        return err(10003, "API key is invalid.", 401)
    try:
        ts = int(h.get("X-BAPI-TIMESTAMP", ""))
        window = int(h.get("X-BAPI-RECV-WINDOW", "5000"))
    except ValueError:
        return err(10002, "invalid request, please check your server timestamp or recv_window param")
    server = state.server_ms()
    if not (server - window <= ts < server + 1000):
        return err(10002, f"invalid request, please check your server timestamp or recv_window param. "
                   f"req_timestamp[{ts}],server_timestamp[{server}],recv_window[{window}]")
    payload = f"{ts}{api_key}{window}" + (req.raw_query if req.method == "GET" else req.body)
    expected = hmac.new(key.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, h.get("X-BAPI-SIGN", "")):
        return err(10004, "error sign! please check your signature generation algorithm.", 401)
    if not key.ip_allowed(req.remote):
        return err(10010, "Unmatched IP, please check your API key's bound IP addresses.", 401)
    if key.expired(server):
        return err(33004, "Your api key has expired.", 401)
    return key


def denied(state: VenueState, req: SimRequest, key: SimKey, perm: str) -> SimResponse:
    return err(10005, "Permission denied, please check your API key permissions.")


def not_found(req: SimRequest) -> SimResponse:
    return SimResponse(404, {"retCode": 10017, "retMsg": "Route not found", "result": {}, "retExtInfo": {}})


def rate_limited(retry_after_s: int) -> SimResponse:
    reset = int(datetime.now(UTC).timestamp() * 1000) + retry_after_s * 1000
    return SimResponse(429, {"retCode": 10006, "retMsg": "Too many visits. Exceeded the API Rate Limit.",
                             "result": {}, "retExtInfo": {}, "time": reset - retry_after_s * 1000},
                       {"Retry-After": str(retry_after_s), "X-Bapi-Limit-Status": "0",
                        "X-Bapi-Limit-Reset-Timestamp": str(reset)})


# --- market ---------------------------------------------------------------------------------------


def time_(state: VenueState, req: SimRequest) -> SimResponse:
    ms = state.server_ms()
    return ok(state, {"timeSecond": str(ms // 1000), "timeNano": str(ms * 1_000_000)})


def _places(step: Decimal) -> int:
    exp = step.normalize().as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


def instruments(state: VenueState, req: SimRequest) -> SimResponse:
    cat = req.param("category")
    if cat is None:
        return err(10001, "params error: category is required")
    out: list[dict[str, Any]] = []
    listed = req.param("status") in (None, "Trading")  # nothing is pre-launch in the sandbox
    for m in state.markets.values() if listed else ():
        if cat == "spot":
            out.append({"symbol": f"{m.base}{m.quote}", "baseCoin": m.base, "quoteCoin": m.quote, "innovation": "0",
                        "status": "Trading", "marginTrading": "none", "stTag": "0",
                        "lotSizeFilter": {"basePrecision": d(m.step), "quotePrecision": "0.00000001",
                                          "minOrderQty": d(m.step), "maxOrderQty": "10000", "minOrderAmt": "1",
                                          "maxOrderAmt": "2000000"},
                        "priceFilter": {"tickSize": d(m.tick)},
                        "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"}})
        elif cat == "linear":
            out.append({"symbol": f"{m.base}{m.quote}", "contractType": "LinearPerpetual", "status": "Trading",
                        "baseCoin": m.base, "quoteCoin": m.quote, "launchTime": "1585526400000",
                        "deliveryTime": "0", "deliveryFeeRate": "", "priceScale": str(_places(m.tick)),
                        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
                        "priceFilter": {"minPrice": d(m.tick), "maxPrice": "1999999.80", "tickSize": d(m.tick)},
                        "lotSizeFilter": {"maxOrderQty": "1000", "maxMktOrderQty": "100", "minOrderQty": d(m.step),
                                          "qtyStep": d(m.step), "postOnlyMaxOrderQty": "1000",
                                          "minNotionalValue": "5"},
                        "unifiedMarginTrade": True, "fundingInterval": 480, "settleCoin": m.quote,
                        "copyTrading": "both", "upperFundingRate": "0.00375", "lowerFundingRate": "-0.00375",
                        "isPreListing": False, "preListingInfo": None,
                        "riskParameters": {"priceLimitRatioX": "0.01", "priceLimitRatioY": "0.02"}, "displayName": ""})
    return ok(state, {"category": cat, "list": out, "nextPageCursor": ""})


# --- account --------------------------------------------------------------------------------------


def _usd(state: VenueState, coin: str) -> Decimal:
    if coin in ("USDT", "USDC", "USD"):
        return Decimal(1)
    m = state.markets.get(coin)
    return m.mark if m is not None else Decimal(0)


def wallet_balance(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    if req.param("accountType") != "UNIFIED":
        return err(10001, "accountType only support UNIFIED.")
    acct = state.account_of(key)
    upl = sum((state.upnl(p) for p in acct.positions.values()), Decimal(0))
    im = sum((state.initial_margin(p) for p in acct.positions.values()), Decimal(0))
    mm = sum((state.maint_margin(p) for p in acct.positions.values()), Decimal(0))
    coins = []
    total_eq = total_wallet = Decimal(0)
    wanted = req.param("coin")
    for coin in sorted(set(acct.spot) | set(acct.futures)):
        if wanted and coin not in wanted.split(","):
            continue
        wallet = acct.spot.get(coin, Decimal(0)) + acct.futures.get(coin, Decimal(0))
        c_upl = upl if coin == "USDT" else Decimal(0)
        eq = wallet + c_upl
        usd = eq * _usd(state, coin)
        total_eq += usd
        total_wallet += wallet * _usd(state, coin)
        coins.append({"availableToBorrow": "", "bonus": "0", "accruedInterest": "0", "availableToWithdraw": "",
                      "totalOrderIM": "0", "equity": d(eq), "totalPositionMM": d(mm) if coin == "USDT" else "0",
                      "usdValue": d(usd), "spotHedgingQty": "0", "unrealisedPnl": d(c_upl),
                      "collateralSwitch": True, "borrowAmount": "0",
                      "totalPositionIM": d(im) if coin == "USDT" else "0",
                      "walletBalance": d(wallet), "cumRealisedPnl": "0", "locked": d(acct.spot_locked(coin)),
                      "marginCollateral": True, "coin": coin})
    return ok(state, {"list": [{"totalEquity": d(total_eq), "accountIMRate": "0", "totalMarginBalance": d(total_eq),
                                "totalInitialMargin": d(im), "accountType": "UNIFIED",
                                "totalAvailableBalance": d(total_eq - im), "accountMMRate": "0",
                                "totalPerpUPL": d(upl), "totalWalletBalance": d(total_wallet), "accountLTV": "0",
                                "totalMaintenanceMargin": d(mm), "coin": coins}]})


def position_list(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    cat = req.param("category")
    if cat not in ("linear", "inverse", "option"):
        return err(10001, "params error: category is invalid")
    if not req.param("symbol") and not req.param("settleCoin") and cat == "linear":
        return err(10001, "params error: symbol or settleCoin is required")
    acct = state.account_of(key)
    out = []
    isolated = acct.margin_mode == "isolated"
    if cat == "linear":
        for p in acct.positions.values():
            m = state.markets[p.base]
            sym = f"{p.base}USDT"
            if req.param("symbol") not in (None, sym) or req.param("settleCoin") not in (None, "USDT"):
                continue
            idx = 0 if acct.position_mode != "hedge" else (1 if p.size > 0 else 2)
            # a cross position in a unified account has no liquidation price of its own: Bybit sends ""
            liq = d(state.liquidation_price(p)) if isolated else ""
            out.append({"positionIdx": idx, "riskId": 1, "riskLimitValue": "2000000", "symbol": sym,
                        "side": "Buy" if p.size > 0 else "Sell", "size": d(abs(p.size)), "avgPrice": d(p.entry),
                        "positionValue": d(abs(p.size) * p.entry), "tradeMode": 1 if isolated else 0,
                        "positionStatus": "Normal", "autoAddMargin": 0, "adlRankIndicator": 2,
                        "leverage": str(p.leverage), "positionBalance": d(state.initial_margin(p)),
                        "markPrice": d(m.mark), "liqPrice": liq, "bustPrice": "", "positionMM":
                        d(state.maint_margin(p)), "positionIM": d(state.initial_margin(p)), "tpslMode": "Full",
                        "takeProfit": "", "stopLoss": "", "trailingStop": "0", "unrealisedPnl": d(state.upnl(p)),
                        "curRealisedPnl": "0", "cumRealisedPnl": "0", "seq": 1, "isReduceOnly": False,
                        "mmrSysUpdatedTime": str(acct.created_ms), "leverageSysUpdatedTime": "", "sessionAvgPrice": "",
                        "createdTime": str(p.updated_ms), "updatedTime": str(p.updated_ms)})
    return ok(state, {"list": out, "nextPageCursor": "", "category": cat})


# --- orders ---------------------------------------------------------------------------------------


def _order_json(acct: SimAccount, o: SimOrder) -> dict[str, Any]:
    """An order with Bybit's current field set (``""`` for prices it has not got)."""
    status = {"open": "New", "filled": "Filled", "canceled": "Cancelled", "expired": "Cancelled"}[o.status]
    idx = 0
    if o.market == "futures" and acct.position_mode == "hedge" and o.leg is not None:
        idx = 1 if o.leg == "long" else 2
    filled_value = o.filled * (o.avg_price or 0)
    return {"symbol": o.symbol.split(":")[0].replace("/", ""),
            "orderType": "Market" if o.type == "market" else "Limit", "orderLinkId": o.client_id,
            "slLimitPrice": "0", "orderId": o.order_id, "cancelType": "UNKNOWN",
            "avgPrice": d(o.avg_price) if o.avg_price else "", "stopOrderType": "",
            "lastPriceOnCreated": d(o.price or o.avg_price or 0),
            "orderStatus": status, "createType": "CreateByUser", "takeProfit": "", "cumExecValue": d(filled_value),
            "tpslMode": "", "smpType": "None", "triggerDirection": 0, "blockTradeId": "", "cumFeeDetail": {},
            "isLeverage": "", "rejectReason": "EC_NoError", "price": d(o.price or 0), "orderIv": "",
            "createdTime": str(o.created_ms), "tpTriggerBy": "", "positionIdx": idx, "timeInForce": o.tif,
            "leavesValue": d((o.amount - o.filled) * (o.price or 0) if o.status == "open" else 0),
            "updatedTime": str(o.updated_ms), "side": "Buy" if o.side == "buy" else "Sell", "smpGroup": 0,
            "triggerPrice": "", "tpLimitPrice": "0", "cumExecFee": "0",
            "leavesQty": d(o.amount - o.filled if o.status == "open" else 0), "slTriggerBy": "",
            "closeOnTrigger": False, "placeType": "", "cumExecQty": d(o.filled), "reduceOnly": o.reduce_only,
            "qty": d(o.amount), "stopLoss": "", "marketUnit": "", "smpOrderId": "", "triggerBy": ""}


def _market_kind(cat: str | None) -> str | None:
    return {"spot": "spot", "linear": "futures"}.get(cat or "")


def orders_realtime(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    kind = _market_kind(req.param("category"))
    if kind is None:
        return err(10001, "params error: category is invalid")
    acct = state.account_of(key)
    link, oid, sym = req.param("orderLinkId"), req.param("orderId"), req.param("symbol")
    out = []
    for o in reversed(acct.orders):
        if o.market != kind:
            continue
        if link or oid:  # a specific order: open or recently closed
            if (link and o.client_id == link) or (oid and o.order_id == oid):
                out.append(_order_json(acct, o))
            continue
        if o.status == "open" and sym in (None, o.symbol.split(":")[0].replace("/", "")):
            out.append(_order_json(acct, o))
    return ok(state, {"list": out, "nextPageCursor": "", "category": req.param("category")})


def _trade_perm(key: SimKey, kind: str) -> bool:
    return ("spot" if kind == "spot" else "futures") in key.perms


def cancel_all(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    kind = _market_kind(req.param("category"))
    if kind is None:
        return err(10001, "params error: category is invalid")
    if not _trade_perm(key, kind):
        return denied(state, req, key, kind)
    if kind == "futures" and not req.param("symbol") and not req.param("settleCoin") and not req.param("baseCoin"):
        return err(10001, "params error: symbol, baseCoin or settleCoin is required")
    acct = state.account_of(key)
    sym = req.param("symbol")
    out = []
    for o in acct.open_orders(kind):
        if sym in (None, o.symbol.split(":")[0].replace("/", "")):
            state.cancel(o)
            out.append({"orderId": o.order_id, "orderLinkId": o.client_id})
    return ok(state, {"list": out, "success": "1"})


def _market_of(state: VenueState, symbol: str | None) -> SimMarket | None:
    return next((m for m in state.markets.values() if f"{m.base}{m.quote}" == symbol), None)


def create_order(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    kind = _market_kind(req.param("category"))
    if kind is None:
        return err(10001, "params error: category is invalid")
    if not _trade_perm(key, kind):
        return denied(state, req, key, kind)
    acct = state.account_of(key)
    m = _market_of(state, req.param("symbol"))
    if m is None:
        return err(10001, "params error: symbol invalid")
    try:
        qty = Decimal(req.param("qty") or "")
        px_raw = req.param("price")
        price = Decimal(px_raw) if px_raw else None
    except InvalidOperation:
        return err(10001, "params error: qty or price invalid")
    side = {"Buy": "buy", "Sell": "sell"}.get(req.param("side") or "")
    otype = {"Market": "market", "Limit": "limit"}.get(req.param("orderType") or "")
    if side is None or otype is None or qty <= 0:
        return err(10001, "params error: side, orderType or qty invalid")
    if qty % m.step != 0 or (price is not None and price % m.tick != 0):
        return err(10001, "params error: qty or price precision")
    link = req.param("orderLinkId") or f"sim{state.next_id()}"
    if any(o.client_id == link for o in acct.orders):
        return err(110072, "OrderLinkedID is duplicate")
    reduce = (req.param("reduceOnly") or "false") == "true"
    leg: Literal["long", "short"] | None = None
    if kind == "futures":
        idx = str(req.param("positionIdx") or "0")
        hedge = acct.position_mode == "hedge"
        if (idx in ("1", "2")) != hedge or idx not in ("0", "1", "2"):
            return err(10001, "position idx not match position mode")
        if hedge:  # 1 = the buy-side (long) leg, 2 = the sell-side (short) leg
            leg = "long" if idx == "1" else "short"
            if (side == "sell") != (leg == "long") and reduce:
                return err(110017, "Reduce-only rule not satisfied")
    if reduce:
        pos = acct.positions.get(position_slot(m.base, leg))
        if kind != "futures" or pos is None or (pos.size > 0) == (side == "buy"):
            return err(110017, "Reduce-only rule not satisfied")
        qty = min(qty, abs(pos.size))
    o = state.place_order(acct, base=m.base, market=kind, side=side, amount=qty, price=price,  # type: ignore[arg-type]
                          type_=otype, tif=req.param("timeInForce") or "GTC", reduce_only=reduce, client_id=link,
                          leg=leg)
    return ok(state, {"orderId": o.order_id, "orderLinkId": o.client_id})


# --- user, asset ----------------------------------------------------------------------------------


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def account_info(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    """Unified account settings: ``marginMode`` ISOLATED_MARGIN or REGULAR_MARGIN."""
    acct = state.account_of(key)
    return ok(state, {"marginMode": "ISOLATED_MARGIN" if acct.margin_mode == "isolated" else "REGULAR_MARGIN",
                      "updatedTime": str(acct.created_ms), "unifiedMarginStatus": 5, "dcpStatus": "OFF",
                      "timeWindow": 10, "smpGroup": 0, "isMasterTrader": False, "spotHedgingStatus": "OFF"})


def query_api(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    resp = _query_api(state, key)
    for name, value in state.key_answer_overrides.get(key.api_key, {}).items():
        if value is None:
            resp.body["result"].pop(name, None)  # None removes the field
        else:
            resp.body["result"][name] = value
    return resp


def _key_permissions(key: SimKey) -> dict[str, list[str]]:
    """A key's permission map as ``query-api`` and ``sub-apikeys`` send it."""
    p = key.perms
    names = (("internal_transfer", "AccountTransfer"), ("universal_transfer", "SubMemberTransfer"),
             ("withdraw", "Withdraw"))
    return {"ContractTrade": ["Order", "Position"] if "futures" in p else [],
            "Spot": ["SpotTrade"] if "spot" in p else [], "Wallet": [name for flag, name in names if flag in p],
            "Options": ["OptionsTrade"] if "options" in p else [],
            "Derivatives": ["DerivativesTrade"] if "futures" in p else [], "CopyTrading": [], "BlockTrade": [],
            "Exchange": [], "NFT": [], "Affiliate": [], "Earn": []}


def _deadline_day(state: VenueState, key: SimKey) -> int:
    """Days left before the key expires; -1 for a key that never expires."""
    return -1 if key.expires_ms is None else max(0, (key.expires_ms - state.server_ms()) // 86_400_000)


def _query_api(state: VenueState, key: SimKey) -> SimResponse:
    acct = state.account_of(key)
    writes = key.perms - {"read"}
    return ok(state, {
        "id": key.created_ms % 100_000_000, "note": key.label, "apiKey": key.api_key, "readOnly": 0 if writes else 1,
        "secret": "", "permissions": _key_permissions(key),
        "ips": list(key.ips) or ["*"], "type": 1, "deadlineDay": _deadline_day(state, key),
        "expiredAt": "" if key.expires_ms is None else _iso(key.expires_ms), "createdAt": _iso(key.created_ms),
        "unified": 1, "uta": 1, "userID": int(acct.uid), "inviterID": 0, "vipLevel": "No VIP",
        "mktMakerLevel": "0", "affiliateID": 0, "rsaPublicKey": "", "isMaster": acct.is_master,
        "parentUid": "0" if acct.is_master else state.master.uid, "kycLevel": "LEVEL_DEFAULT", "kycRegion": ""})


def query_address(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    acct = state.account_of(key)
    coin = req.param("coin")
    rows = [{"coin": e.coin, "chain": e.network, "address": e.address, "tag": "", "remark": e.label, "status": 0,
             "addressType": 0, "verified": 1 if acct.whitelist_enabled else 0, "createdAt": str(acct.created_ms)}
            for e in acct.whitelist if coin in (None, e.coin)]
    return ok(state, {"rows": rows, "nextPageCursor": ""})


def withdraw_create(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    acct = state.account_of(key)
    coin, chain, address, amt_raw = req.param("coin"), req.param("chain"), req.param("address"), req.param("amount")
    if not coin or not address or not amt_raw:
        return err(131002, "Parameter error")
    try:
        amount = Decimal(amt_raw)
    except InvalidOperation:
        return err(131002, "Parameter error")
    if acct.whitelist_enabled and not any(
        e.coin == coin and e.address.lower() == address.lower() and chain in (None, e.network) for e in acct.whitelist
    ):
        return err(131093, "The withdrawal address is not in the whitelist")
    if acct.spot.get(coin, Decimal(0)) - acct.spot_locked(coin) < amount:
        return err(131001, "the available balance is not sufficient to cover the handling fee")
    acct.spot[coin] = acct.spot.get(coin, Decimal(0)) - amount
    wid = state.next_id()
    withdrawals.record(state, acct, wid=wid, coin=coin, address=address, amount=d(amount), network=chain or "",
                       client_id=req.param("requestId") or "")
    return ok(state, {"id": wid})


def withdraw_records(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    """``GET /v5/asset/withdraw/query-record``: newest first, filtered by ``withdrawID`` and ``coin``;
    ``status`` as Bybit's strings (SecurityCheck, Pending, success, CancelByUser, Reject, Fail,
    BlockchainConfirmed...)."""
    acct = state.account_of(key)
    wid, coin = req.param("withdrawID"), req.param("coin")
    rows = [{"coin": w["coin"], "chain": w["network"], "amount": w["amount"], "txID": w["tx_id"],
             "status": w["status"], "toAddress": w["address"], "tag": "", "withdrawFee": "0",
             "createTime": str(w["created_ms"]), "updateTime": str(w["updated_ms"]), "withdrawId": w["id"],
             "withdrawType": 0} for w in withdrawals.history(state, acct)
            if wid in (None, w["id"]) and coin in (None, w["coin"])]
    return ok(state, {"rows": rows, "nextPageCursor": ""})


def _status(a: SimAccount) -> int:
    return 4 if a.frozen else 1


def query_sub_members(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    subs = [a for a in state.accounts.values() if not a.is_master]
    return ok(state, {"subMembers": [{"uid": a.uid, "username": a.name, "memberType": 1, "status": _status(a),
                                      "accountMode": 5, "remark": a.client or ""} for a in subs]})


def frozen_sub_member(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    sub = state.sub_by_uid(req.param("subuid") or "")
    frozen = req.param("frozen")
    if sub is None:
        return err(131207, "Account not exist")
    if frozen not in ("0", "1"):
        return err(10001, "params error: frozen must be 0 or 1")
    sub.frozen = frozen == "1"
    return ok(state, {})


def sub_apikeys(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    """``GET /v5/user/sub-apikeys``: the live keys of sub-member ``subMemberId`` (secrets masked)."""
    sub = state.sub_by_uid(req.param("subMemberId") or "")
    if sub is None:
        return err(131207, "Account not exist")
    # unlike query-api: ``id`` a numeric string, ``readOnly`` a boolean, ``status`` 1 normal / 3 expired
    rows = [{"id": str(k.created_ms % 100_000_000), "ips": list(k.ips) or ["*"], "apiKey": k.api_key,
             "note": k.label, "status": 3 if k.expires_ms is not None and k.expires_ms <= state.server_ms() else 1,
             "expiredAt": "" if k.expires_ms is None else _iso(k.expires_ms), "createdAt": _iso(k.created_ms),
             "type": 1, "permissions": {n: v for n, v in _key_permissions(k).items() if n != "Affiliate"},
             "secret": "********",
             "readOnly": not (k.perms - {"read"}), "deadlineDay": _deadline_day(state, k), "flag": "hmac"}
            for k in state.keys.values() if k.account_uid == sub.uid and not k.deleted]
    return ok(state, {"result": rows, "nextPageCursor": ""})


def delete_sub_api(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    """``POST /v5/user/delete-sub-api`` with a master-account key naming the sub's ``apikey``."""
    target = state.keys.get(req.param("apikey") or "")
    if target is None or target.deleted or state.accounts[target.account_uid].is_master:
        return err(10003, "API key is invalid.")
    target.deleted = True
    return ok(state, {})


def tickers(state: VenueState, req: SimRequest) -> SimResponse:
    """``GET /v5/market/tickers`` (``category=linear``): last and mark prices."""
    if req.param("category") != "linear":
        return err(10001, "params error: category is invalid")
    sym = req.param("symbol")
    funding_ms = state.server_ms() // 28_800_000 * 28_800_000 + 28_800_000
    rows = [{"symbol": f"{m.base}{m.quote}", "lastPrice": d(m.last), "indexPrice": d(m.mark), "markPrice": d(m.mark),
             "prevPrice24h": d(m.last), "price24hPcnt": "0", "highPrice24h": d(m.last), "lowPrice24h": d(m.last),
             "prevPrice1h": d(m.last), "openInterest": "0", "openInterestValue": "0", "turnover24h": "0",
             "volume24h": "0", "fundingRate": "0.0001", "nextFundingTime": str(funding_ms),
             "predictedDeliveryPrice": "", "basisRate": "", "deliveryFeeRate": "", "deliveryTime": "0",
             "ask1Size": "1", "bid1Price": d(m.last), "ask1Price": d(m.last), "bid1Size": "1"}
            for m in state.markets.values() if sym in (None, f"{m.base}{m.quote}")]
    if sym is not None and not rows:
        return err(10001, "params error: symbol invalid")
    return ok(state, {"category": "linear", "list": rows})


def _transfer_row(t: SimTransfer) -> dict[str, Any]:
    return {"transferId": t.client_id, "coin": t.asset, "amount": d(t.amount), "fromMemberId": t.from_uid,
            "toMemberId": t.to_uid, "fromAccountType": "UNIFIED", "toAccountType": "UNIFIED",
            "timestamp": str(t.at_ms), "status": "SUCCESS"}


def universal_transfer(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    """``POST /v5/asset/transfer/universal-transfer``; a sub-account key may only send its own
    funds to its master (UNIFIED to UNIFIED is simulated). ``transferId`` (a UUID) must be new."""
    acct = state.account_of(key)
    tid = req.param("transferId") or ""
    if len(tid) != 36 or tid.count("-") != 4:
        return err(10001, "params error: transferId must be a UUID")
    if any(t.client_id == tid for t in state.transfers):
        return err(131214, "TransferId exist")
    from_uid, to_uid = req.param("fromMemberId") or "", req.param("toMemberId") or ""
    if (req.param("fromAccountType"), req.param("toAccountType")) != ("UNIFIED", "UNIFIED"):
        return err(10001, "params error: accountType")
    if acct.is_master or from_uid != acct.uid or to_uid != state.master.uid:
        return err(10001, "params error: a sub-account key may only transfer its own funds to its main account")
    try:
        amount = Decimal(req.param("amount") or "")
    except InvalidOperation:
        return err(10001, "params error: amount")
    t = state.move_to_master(acct, req.param("coin") or "", amount, unified=True, transfer_id=tid)
    if t is None:
        return err(131212, "Insufficient balance")
    return ok(state, {"transferId": tid, "status": "SUCCESS"})


def universal_transfer_list(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    """``GET /v5/asset/transfer/query-universal-transfer-list`` (by ``transferId`` or all of the caller's)."""
    acct = state.account_of(key)
    tid = req.param("transferId")
    rows = [_transfer_row(t) for t in state.transfers
            if acct.uid in (t.from_uid, t.to_uid) and tid in (None, t.client_id)]
    return ok(state, {"list": rows, "nextPageCursor": ""})


endpoints: tuple[Endpoint, ...] = (
    Endpoint("GET", "/v5/market/time", time_),
    Endpoint("GET", "/v5/market/instruments-info", instruments),
    Endpoint("GET", "/v5/market/tickers", tickers),
    Endpoint("GET", "/v5/user/sub-apikeys", sub_apikeys, True, "keys"),
    Endpoint("POST", "/v5/user/delete-sub-api", delete_sub_api, True, "keys"),
    Endpoint("POST", "/v5/asset/transfer/universal-transfer", universal_transfer, True, "transfer"),
    Endpoint("GET", "/v5/asset/transfer/query-universal-transfer-list", universal_transfer_list, True, "read"),
    Endpoint("GET", "/v5/account/wallet-balance", wallet_balance, True, "read"),
    Endpoint("GET", "/v5/position/list", position_list, True, "read"),
    Endpoint("GET", "/v5/account/info", account_info, True, "read"),
    Endpoint("GET", "/v5/order/realtime", orders_realtime, True, "read"),
    Endpoint("POST", "/v5/order/cancel-all", cancel_all, True, "trade"),
    Endpoint("POST", "/v5/order/create", create_order, True, "trade"),
    Endpoint("GET", "/v5/user/query-api", query_api, True, None),
    Endpoint("GET", "/v5/asset/withdraw/query-address", query_address, True, "withdraw"),
    Endpoint("POST", "/v5/asset/withdraw/create", withdraw_create, True, "withdraw"),
    Endpoint("GET", "/v5/asset/withdraw/query-record", withdraw_records, True, "read"),
    Endpoint("GET", "/v5/user/query-sub-members", query_sub_members, True, "master"),
    Endpoint("POST", "/v5/user/frozen-sub-member", frozen_sub_member, True, "keys"),
)
