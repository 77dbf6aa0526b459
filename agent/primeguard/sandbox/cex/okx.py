"""OKX v5 simulator: public time/instruments, unified trading account, trade, asset, sub-account keys.

Signed requests carry ``OK-ACCESS-KEY``, ``OK-ACCESS-PASSPHRASE``, ``OK-ACCESS-TIMESTAMP`` (ISO 8601)
and ``OK-ACCESS-SIGN`` = base64 HMAC-SHA256 of timestamp + method + request path (with the query for
GET) + body. Errors use OKX codes: 50111 unknown key, 50105 wrong passphrase, 50113 bad signature,
50102 stale timestamp, 50110 IP not bound, 50120 missing permission, 50011 rate limit, 58203 /
58207 withdrawal address not on the verified list (OKX API withdrawals only ever go to verified
addresses), 51023 no such position. Swap sizes are in contracts (``ctVal`` base units each).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from primeguard.sandbox.cex import withdrawals
from primeguard.sandbox.cex.http import TRADE_PERMS, Endpoint, SimRequest, SimResponse, d
from primeguard.sandbox.cex.state import (
    SimAccount,
    SimKey,
    SimMarket,
    SimOrder,
    SimTransfer,
    VenueState,
    position_slot,
)

venue = "okx"


def ok(data: list[Any]) -> SimResponse:
    return SimResponse(200, {"code": "0", "msg": "", "data": data})


def err(code: str, msg: str, status: int = 200, data: list[Any] | None = None) -> SimResponse:
    return SimResponse(status, {"code": code, "msg": msg, "data": data or []})


def authenticate(state: VenueState, req: SimRequest) -> SimKey | SimResponse:
    h = req.headers
    api_key, phrase = h.get("OK-ACCESS-KEY"), h.get("OK-ACCESS-PASSPHRASE")
    sign, ts = h.get("OK-ACCESS-SIGN"), h.get("OK-ACCESS-TIMESTAMP")
    if not api_key:
        return err("50103", 'Request header "OK-ACCESS-KEY" cannot be empty.', 401)
    if not phrase:
        return err("50104", 'Request header "OK-ACCESS-PASSPHRASE" cannot be empty.', 401)
    if not sign:
        return err("50106", 'Request header "OK-ACCESS-SIGN" cannot be empty.', 401)
    if not ts:
        return err("50107", 'Request header "OK-ACCESS-TIMESTAMP" cannot be empty.', 401)
    key = state.keys.get(api_key)
    if key is None or key.deleted:
        return err("50111", "Invalid OK-ACCESS-KEY.", 401)
    try:
        ts_ms = int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return err("50112", "Invalid OK-ACCESS-TIMESTAMP.", 401)
    if abs(state.server_ms() - ts_ms) > 30_000:
        return err("50102", "Timestamp request expired.", 401)
    if not hmac.compare_digest(phrase, key.passphrase or ""):
        return err("50105", 'Request header "OK-ACCESS-PASSPHRASE" incorrect.', 401)
    path = req.path + (f"?{req.raw_query}" if req.method == "GET" and req.raw_query else "")
    prehash = ts + req.method + path + (req.body if req.method != "GET" else "")
    expected = base64.b64encode(hmac.new(key.secret.encode(), prehash.encode(), hashlib.sha256).digest()).decode()
    if not hmac.compare_digest(expected, sign):
        return err("50113", "Invalid Sign.", 401)
    if not key.ip_allowed(req.remote):
        return err("50110", f"Your IP {req.remote} is not included in your API key's IP whitelist.", 401)
    if key.expired(state.server_ms()):
        return err("50119", "API key doesn't exist.", 401)
    return key


def denied(state: VenueState, req: SimRequest, key: SimKey, perm: str) -> SimResponse:
    return err("50120", "API key doesn't have permission.", 401)


def not_found(req: SimRequest) -> SimResponse:
    return SimResponse(404, {"msg": "Not Found", "code": "404"})


def rate_limited(retry_after_s: int) -> SimResponse:
    return SimResponse(429, {"msg": "Too Many Requests", "code": "50011"}, {"Retry-After": str(retry_after_s)})


# --- public ---------------------------------------------------------------------------------------


def time_(state: VenueState, req: SimRequest) -> SimResponse:
    return ok([{"ts": str(state.server_ms())}])


def _inst_id(m: SimMarket, market: str) -> str:
    return f"{m.base}-{m.quote}" if market == "spot" else f"{m.base}-{m.quote}-SWAP"


def instruments(state: VenueState, req: SimRequest) -> SimResponse:
    kind = req.param("instType")
    if kind is None:
        return err("50014", "Parameter instType can not be empty.", 400)
    out = []
    for m in state.markets.values():
        base = {"alias": "", "category": "1", "expTime": "", "listTime": "1606468572000", "lever": "10",
                "maxLmtSz": "10000000", "maxMktSz": "1000000", "maxStopSz": "1000000", "maxTriggerSz": "10000000",
                "maxTwapSz": "10000000", "maxIcebergSz": "10000000", "maxLmtAmt": "20000000",
                "maxMktAmt": "1000000", "optType": "", "state": "live", "stk": "", "ruleType": "normal",
                "tickSz": d(m.tick)}
        if kind == "SPOT":
            out.append({**base, "instType": "SPOT", "instId": _inst_id(m, "spot"), "baseCcy": m.base,
                        "quoteCcy": m.quote, "settleCcy": "", "ctVal": "", "ctMult": "", "ctValCcy": "",
                        "ctType": "", "uly": "", "instFamily": "", "lotSz": d(m.step), "minSz": d(m.step)})
        elif kind == "SWAP":
            out.append({**base, "instType": "SWAP", "instId": _inst_id(m, "swap"), "baseCcy": "", "quoteCcy": "",
                        "settleCcy": m.quote, "ctVal": d(m.ct_val), "ctMult": "1", "ctValCcy": m.base,
                        "ctType": "linear", "uly": f"{m.base}-{m.quote}", "instFamily": f"{m.base}-{m.quote}",
                        "lotSz": "0.01", "minSz": "0.01"})
    return ok(out)


# --- account --------------------------------------------------------------------------------------


def _usd(state: VenueState, ccy: str) -> Decimal:
    if ccy in ("USDT", "USDC", "USD"):
        return Decimal(1)
    m = state.markets.get(ccy)
    return m.mark if m is not None else Decimal(0)


def balance(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    """Unified trading account balance, with OKX's current field set (numbers as strings; ``""``
    only where OKX leaves a field empty)."""
    acct = state.account_of(key)
    upl = sum((state.upnl(p) for p in acct.positions.values()), Decimal(0))
    imr = sum((state.initial_margin(p) for p in acct.positions.values()), Decimal(0))
    mmr = sum((state.maint_margin(p) for p in acct.positions.values()), Decimal(0))
    notional = sum((abs(p.size) * state.markets[p.base].mark for p in acct.positions.values()), Decimal(0))
    ccys = sorted(set(acct.spot) | set(acct.futures))
    wanted = req.param("ccy")
    if wanted:
        ccys = [c for c in ccys if c in wanted.split(",")]
    details = []
    total = avail_total = Decimal(0)
    now = str(state.server_ms())
    for ccy in ccys:
        cash = acct.spot.get(ccy, Decimal(0)) + acct.futures.get(ccy, Decimal(0))
        c_upl = upl if ccy == "USDT" else Decimal(0)
        ord_frozen = acct.spot_locked(ccy)
        frozen = ord_frozen + (imr if ccy == "USDT" else Decimal(0))
        eq = cash + c_upl
        eq_usd = eq * _usd(state, ccy)
        total += eq_usd
        avail_total += (eq - frozen) * _usd(state, ccy)
        details.append({
            "accAvgPx": "", "availBal": d(cash - frozen), "availEq": d(eq - frozen), "borrowFroz": "0",
            "cashBal": d(cash), "ccy": ccy, "clSpotInUseAmt": "", "colBorrAutoConversion": "0",
            "collateralEnabled": True, "collateralRestrict": False, "crossLiab": "0", "disEq": d(eq_usd),
            "eq": d(eq), "eqUsd": d(eq_usd), "fixedBal": "0", "frozenBal": d(frozen), "imr": "", "interest": "0",
            "isoEq": "0", "isoLiab": "0", "isoUpl": "0", "liab": "0", "maxLoan": "0", "maxSpotInUse": "",
            "mgnRatio": "", "mmr": "", "notionalLever": "", "openAvgPx": "", "ordFrozen": d(ord_frozen),
            "rewardBal": "", "smtSyncEq": "0", "spotBal": "", "spotCopyTradingEq": "0", "spotInUseAmt": "",
            "spotIsoBal": "0", "spotUpl": "", "spotUplRatio": "", "stgyEq": "0", "totalPnl": "",
            "totalPnlRatio": "", "twap": "0", "uTime": now, "upl": d(c_upl), "uplLiab": "0"})
    ratio = d(total / mmr) if mmr else ""
    return ok([{"adjEq": d(total), "availEq": d(avail_total), "borrowFroz": "0", "details": details, "imr": d(imr),
                "isoEq": "0", "mgnRatio": ratio, "mmr": d(mmr), "notionalUsd": d(notional),
                "notionalUsdForBorrow": "0", "notionalUsdForFutures": "0", "notionalUsdForOption": "0",
                "notionalUsdForSwap": d(notional), "ordFroz": "0", "totalEq": d(total), "uTime": now,
                "upl": d(upl)}])


def _pos_side(acct: SimAccount, size: Decimal) -> str:
    if acct.position_mode != "hedge":
        return "net"
    return "long" if size > 0 else "short"


def positions(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    """Positions in net mode (signed ``pos``, ``posSide`` net) or long/short mode (``pos`` positive,
    ``posSide`` long/short); ``mgnMode`` from the account's margin mode."""
    acct = state.account_of(key)
    kind = req.param("instType")
    if kind not in (None, "SWAP"):
        return ok([])
    out = []
    isolated = acct.margin_mode == "isolated"
    for p in acct.positions.values():
        m = state.markets[p.base]
        inst = _inst_id(m, "swap")
        if req.param("instId") not in (None, inst):
            continue
        side = _pos_side(acct, p.size)
        contracts = p.size / m.ct_val
        im = d(state.initial_margin(p))
        out.append({
            "adl": "1", "availPos": d(abs(contracts)), "avgPx": d(p.entry), "baseBal": "",
            "baseBorrowed": "", "baseInterest": "", "bePx": d(p.entry), "bizRefId": "", "bizRefType": "",
            "cTime": str(p.updated_ms), "ccy": "USDT", "clSpotInUseAmt": "", "closeOrderAlgo": [], "deltaBS": "",
            "deltaPA": "", "fee": "0", "fundingFee": "0", "gammaBS": "", "gammaPA": "", "hedgedPos": "",
            "idxPx": d(m.mark), "imr": "" if isolated else im, "instId": inst, "instType": "SWAP", "interest": "",
            "last": d(m.last), "lever": str(p.leverage), "liab": "", "liabCcy": "", "liqPenalty": "0",
            "liqPx": d(state.liquidation_price(p)), "margin": im if isolated else "", "markPx": d(m.mark),
            "maxSpotInUseAmt": "", "mgnMode": acct.margin_mode,
            "mgnRatio": d((state.initial_margin(p) / state.maint_margin(p)).quantize(Decimal("0.0001"))),
            "mmr": d(state.maint_margin(p)),
            "nonSettleAvgPx": "", "notionalUsd": d(abs(p.size) * m.mark), "optVal": "", "pendingCloseOrdLiabVal": "",
            "pnl": "0", "pos": d(abs(contracts) if side != "net" else contracts), "posCcy": "",
            "posId": f"{acct.uid}{ord(p.base[0]):03d}{1 if p.size > 0 else 2}", "posSide": side, "quoteBal": "",
            "quoteBorrowed": "",
            "quoteInterest": "", "realizedPnl": "0", "settledPnl": "", "spotInUseAmt": "", "spotInUseCcy": "",
            "thetaBS": "", "thetaPA": "", "tradeId": str(p.updated_ms), "uTime": str(p.updated_ms),
            "upl": d(state.upnl(p)),
            "uplLastPx": d(p.size * (m.last - p.entry)), "uplRatio": "0", "uplRatioLastPx": "0", "usdPx": "",
            "vegaBS": "", "vegaPA": ""})
    return ok(out)


def _perm_string(key: SimKey) -> str:
    perms = ["read_only"] if "read" in key.perms else []
    if key.perms & TRADE_PERMS:
        perms.append("trade")
    if "withdraw" in key.perms:
        perms.append("withdraw")
    return ",".join(perms)


def config(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    acct = state.account_of(key)
    resp = ok([{"acctLv": "2", "acctStpMode": "cancel_maker", "autoLoan": False, "ctIsoMode": "automatic",
                "enableSpotBorrow": False, "greeksType": "PA", "ip": ",".join(key.ips), "type":
                "0" if acct.is_master else "1", "kycLv": "2", "label": key.label, "level": "Lv1",
                "levelTmp": "", "liquidationGear": "-1", "mainUid": state.master.uid, "mgnIsoMode": "automatic",
                "opAuth": "0", "perm": _perm_string(key),
                "posMode": "long_short_mode" if acct.position_mode == "hedge" else "net_mode", "roleType": "0",
                "spotBorrowAutoRepay": False, "spotOffsetType": "", "spotRoleType": "0", "spotTraderInsts": [],
                "traderInsts": [], "uid": acct.uid, "settleCcy": "USDT", "settleCcyList": ["USDT"]}])
    for name, value in state.key_answer_overrides.get(key.api_key, {}).items():
        if value is None:
            resp.body["data"][0].pop(name, None)  # None removes the field
        else:
            resp.body["data"][0][name] = value
    return resp


# --- trade ----------------------------------------------------------------------------------------


def _order_json(state: VenueState, acct: SimAccount, o: SimOrder) -> dict[str, Any]:
    """An order with OKX's current field set (``""`` for prices it has not got, e.g. no fill yet)."""
    base = o.symbol.split("/")[0]
    m = state.markets[base]
    swap = o.market == "futures"
    ct = m.ct_val if swap else Decimal(1)
    state_ = {"open": "live", "filled": "filled", "canceled": "canceled", "expired": "canceled"}[o.status]
    pos_side = o.leg if swap and acct.position_mode == "hedge" and o.leg is not None else "net"
    filled = o.filled > 0
    return {"accFillSz": d(o.filled / ct), "algoClOrdId": "", "algoId": "", "attachAlgoClOrdId": "",
            "attachAlgoOrds": [], "avgPx": d(o.avg_price) if filled and o.avg_price else "",
            "cTime": str(o.created_ms), "cancelSource": "", "cancelSourceReason": "", "category": "normal", "ccy": "",
            "clOrdId": o.client_id, "fee": "0", "feeCcy": "USDT", "fillPx": d(o.avg_price) if filled and o.avg_price
            else "", "fillSz": d(o.filled / ct), "fillTime": str(o.updated_ms) if filled else "",
            "instId": _inst_id(m, "swap" if swap else "spot"), "instType": "SWAP" if swap else "SPOT",
            "isTpLimit": "false", "lever": "3" if swap else "", "linkedAlgoOrd": {"algoId": ""}, "ordId": o.order_id,
            "ordType": "market" if o.type == "market" else ("ioc" if o.tif == "IOC" else "limit"), "pnl": "0",
            "posSide": pos_side, "px": d(o.price) if o.price is not None else "", "pxType": "", "pxUsd": "",
            "pxVol": "", "quickMgnType": "", "rebate": "0", "rebateCcy": "USDT",
            "reduceOnly": "true" if o.reduce_only else "false", "side": o.side, "slOrdPx": "", "slTriggerPx": "",
            "slTriggerPxType": "", "source": "", "state": state_, "stpId": "", "stpMode": "cancel_maker",
            "sz": d(o.amount / ct), "tag": "", "tdMode": acct.margin_mode if swap else "cash",
            "tgtCcy": "" if swap else "base_ccy", "tpOrdPx": "", "tpTriggerPx": "", "tpTriggerPxType": "",
            "tradeId": "", "uTime": str(o.updated_ms)}


def orders_pending(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    acct = state.account_of(key)
    kind = req.param("instType")
    out = []
    for o in acct.open_orders():
        j = _order_json(state, acct, o)
        if kind in (None, j["instType"]) and req.param("instId") in (None, j["instId"]):
            out.append(j)
    return ok(out)


def _find(state: VenueState, acct: SimAccount, inst: str | None, ord_id: str | None,
          cl_id: str | None) -> SimOrder | None:
    for o in reversed(acct.orders):
        named = (ord_id and o.order_id == ord_id) or (cl_id and o.client_id == cl_id)
        if named and (inst is None or _order_json(state, acct, o)["instId"] == inst):
            return o
    return None


def get_order(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    acct = state.account_of(key)
    o = _find(state, acct, req.param("instId"), req.param("ordId"), req.param("clOrdId"))
    return err("51603", "Order does not exist") if o is None else ok([_order_json(state, acct, o)])


def _market_for(state: VenueState, inst: str) -> tuple[SimMarket, str] | None:
    for m in state.markets.values():
        if inst == _inst_id(m, "spot"):
            return m, "spot"
        if inst == _inst_id(m, "swap"):
            return m, "futures"
    return None


def place_order(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    acct = state.account_of(key)
    found = _market_for(state, req.param("instId") or "")
    if found is None:
        return err("51001", "Instrument ID does not exist.")
    m, market = found
    if ("spot" if market == "spot" else "futures") not in key.perms:
        return denied(state, req, key, "trade")
    try:
        sz = Decimal(req.param("sz") or "")
        px_raw = req.param("px")
        px = Decimal(px_raw) if px_raw else None
    except InvalidOperation:
        return err("51000", "Parameter sz error")
    side = req.param("side")
    ord_type = req.param("ordType") or ""
    if side not in ("buy", "sell") or ord_type not in ("market", "limit", "ioc", "fok"):
        return err("51000", "Parameter side or ordType error")
    cl = req.param("clOrdId") or f"sim{state.next_id()}"
    if any(o.client_id == cl for o in acct.orders):
        return _item_error("51016", "Duplicated clOrdId", cl)
    amount = sz * (m.ct_val if market == "futures" else 1)
    reduce = (req.param("reduceOnly") or "false") == "true"
    leg: Literal["long", "short"] | None = None
    if market == "futures":
        found_leg = _leg_param(acct, req.param("posSide"))
        if isinstance(found_leg, SimResponse):
            return found_leg
        leg = found_leg
        if leg is not None:  # long/short mode: selling the long leg (buying the short one) reduces it
            reduce = (side == "sell") == (leg == "long")
    if reduce:
        pos = acct.positions.get(position_slot(m.base, leg))
        if pos is None or (pos.size > 0) == (side == "buy"):
            return _item_error("51169", "Order failed because you don't have any positions to reduce.", cl)
        amount = min(amount, abs(pos.size))
    o = state.place_order(acct, base=m.base, market=market, side=side, amount=amount, price=px,  # type: ignore[arg-type]
                          type_="market" if ord_type == "market" else "limit",
                          tif={"ioc": "IOC", "fok": "FOK"}.get(ord_type, "GTC"), reduce_only=reduce, client_id=cl,
                          leg=leg)
    resp = ok([{"clOrdId": o.client_id, "ordId": o.order_id, "sCode": "0", "sMsg": "Order placed", "tag": "",
                "ts": str(o.created_ms)}])
    micros = str(state.server_ms() * 1000)
    resp.body.update({"inTime": micros, "outTime": micros})  # trade endpoints stamp the gateway times
    return resp


def _item_error(code: str, msg: str, cl: str) -> SimResponse:
    return err("1", "All operations failed", 200, [{"clOrdId": cl, "ordId": "", "tag": "", "ts": "",
                                                    "sCode": code, "sMsg": msg}])


def cancel_batch(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    acct = state.account_of(key)
    items = req.json_body if isinstance(req.json_body, list) else []
    if not items or len(items) > 20:
        return err("50014", "Parameter can not be empty or exceeds 20 orders.", 400)
    out = []
    for it in items:
        if not isinstance(it, dict):
            return err("50002", "Json data format error.", 400)
        o = _find(state, acct, it.get("instId"), it.get("ordId"), it.get("clOrdId"))
        if o is None or o.status != "open":
            out.append({"clOrdId": it.get("clOrdId", ""), "ordId": it.get("ordId", ""), "ts": str(state.server_ms()),
                        "sCode": "51400", "sMsg": "Order cancellation failed as the order has been filled, "
                        "canceled or does not exist."})
            continue
        if (o.market == "spot" and "spot" not in key.perms) or (o.market == "futures" and "futures" not in key.perms):
            out.append({"clOrdId": o.client_id, "ordId": o.order_id, "ts": str(state.server_ms()),
                        "sCode": "50120", "sMsg": "API key doesn't have permission."})
            continue
        state.cancel(o)
        out.append({"clOrdId": o.client_id, "ordId": o.order_id, "ts": str(state.server_ms()), "sCode": "0",
                    "sMsg": ""})
    failed = sum(1 for x in out if x["sCode"] != "0")
    if failed == len(out):
        resp = err("1", "All operations failed", 200, out)
    elif failed:
        resp = err("2", "Batch operation partially succeeded", 200, out)
    else:
        resp = ok(out)
    micros = str(state.server_ms() * 1000)
    resp.body.update({"inTime": micros, "outTime": micros})  # a trade endpoint: the gateway times, as on an order
    return resp


def _leg_param(acct: SimAccount, pos_side: str | None) -> Literal["long", "short"] | SimResponse | None:
    """The leg ``posSide`` names: required (long/short) in long/short mode, net or absent in net mode;
    anything else is the venue's 51000."""
    if acct.position_mode == "hedge":
        if pos_side not in ("long", "short"):
            return err("51000", "Parameter posSide error")
        return "long" if pos_side == "long" else "short"
    if pos_side not in (None, "", "net"):
        return err("51000", "Parameter posSide error")
    return None


def close_position(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    acct = state.account_of(key)
    if "futures" not in key.perms:
        return denied(state, req, key, "futures")
    found = _market_for(state, req.param("instId") or "")
    if found is None or found[1] != "futures":
        return err("51001", "Instrument ID does not exist.")
    m = found[0]
    if req.param("mgnMode") not in ("cross", "isolated"):
        return err("51000", "Parameter mgnMode error")
    leg = _leg_param(acct, req.param("posSide"))
    if isinstance(leg, SimResponse):
        return leg
    pos = acct.positions.get(position_slot(m.base, leg))
    if pos is None:
        return err("51023", "Position does not exist.")
    cl = req.param("clOrdId") or f"sim{state.next_id()}"
    if (req.param("autoCxl") or "false") == "true":
        for o in acct.open_orders("futures"):
            if o.symbol == m.unified_swap:
                state.cancel(o)
    state.place_order(acct, base=m.base, market="futures", side="sell" if pos.size > 0 else "buy",
                      amount=abs(pos.size), price=None, type_="market", tif="IOC", reduce_only=True, client_id=cl,
                      leg=leg)
    return ok([{"clOrdId": cl, "instId": _inst_id(m, "swap"), "posSide": req.param("posSide") or "net", "tag": ""}])


# --- asset and sub-accounts -----------------------------------------------------------------------


def withdrawal(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    acct = state.account_of(key)
    ccy, to_addr, amt_raw = req.param("ccy"), req.param("toAddr"), req.param("amt")
    if not ccy or not to_addr or not amt_raw:
        return err("50014", "Parameter ccy, amt or toAddr can not be empty.", 400)
    try:
        amt = Decimal(amt_raw)
    except InvalidOperation:
        return err("51000", "Parameter amt error")
    if not acct.whitelist:
        return err("58203", "Please add a withdrawal address.")
    chain = req.param("chain")
    if not any(e.coin == ccy and e.address.lower() == to_addr.lower()
               and (chain is None or chain in (e.network, f"{ccy}-{e.network}")) for e in acct.whitelist):
        return err("58207", "Withdrawal address isn't on the verified address list.")
    if acct.spot.get(ccy, Decimal(0)) - acct.spot_locked(ccy) < amt:
        return err("58350", "Insufficient balance.")
    acct.spot[ccy] = acct.spot.get(ccy, Decimal(0)) - amt
    wd = state.next_id()
    withdrawals.record(state, acct, wid=wd, coin=ccy, address=to_addr, amount=d(amt), network=chain or "",
                       client_id=req.param("clientId") or "")
    return ok([{"amt": d(amt), "wdId": wd, "ccy": ccy, "clientId": req.param("clientId") or "", "chain": chain or ""}])


def withdrawal_history(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    """``GET /api/v5/asset/withdrawal-history``: newest first, filtered by ``ccy``, ``wdId``,
    ``clientId``; ``state`` as OKX's string codes (-3 canceling, -2 canceled, -1 failed, 0 waiting,
    1 broadcasting, 2 success, 7 approved, 10 waiting transfer, 4/5/6/8/9/12 manual review...)."""
    acct = state.account_of(key)
    ccy, wd_id, client = req.param("ccy"), req.param("wdId"), req.param("clientId")
    out = []
    for w in withdrawals.history(state, acct):
        if ccy not in (None, w["coin"]) or wd_id not in (None, w["id"]) or client not in (None, w["client_id"]):
            continue
        out.append({"chain": w["network"], "fee": "0", "feeCcy": w["coin"], "ccy": w["coin"],
                    "clientId": w["client_id"], "toAddrType": "1", "amt": w["amount"], "txId": w["tx_id"],
                    "from": "", "areaCodeFrom": "", "to": w["address"], "areaCodeTo": "", "state": w["status"],
                    "ts": str(w["created_ms"]), "nonTradableAsset": False, "wdId": w["id"]})
    return ok(out)


def _sub_key(state: VenueState, req: SimRequest) -> tuple[SimAccount, SimKey | None] | SimResponse:
    sub = state.sub_by_name(req.param("subAcct") or "")
    if sub is None:
        return err("59503", "Sub-account does not exist.")
    target = state.keys.get(req.param("apiKey") or "")
    if target is None or target.account_uid != sub.uid or target.deleted:
        return sub, None
    return sub, target


def _key_json(k: SimKey) -> dict[str, Any]:
    return {"label": k.label, "apiKey": k.api_key, "perm": _perm_string(k), "ip": ",".join(k.ips),
            "ts": str(k.created_ms)}


def sub_apikey(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    found = _sub_key(state, req)
    if isinstance(found, SimResponse):
        return found
    sub, target = found
    if req.param("apiKey"):
        return ok([] if target is None else [_key_json(target)])
    return ok([_key_json(k) for k in state.keys.values() if k.account_uid == sub.uid and not k.deleted])


def sub_delete_apikey(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    found = _sub_key(state, req)
    if isinstance(found, SimResponse):
        return found
    sub, target = found
    if target is None:
        return err("59506", "APIKey does not exist.")
    target.deleted = True
    return ok([{"subAcct": sub.name}])


def sub_modify_apikey(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    found = _sub_key(state, req)
    if isinstance(found, SimResponse):
        return found
    sub, target = found
    if target is None:
        return err("59506", "APIKey does not exist.")
    ip = req.param("ip")
    if ip is not None:
        target.ips = tuple(x.strip() for x in ip.split(",") if x.strip())
    perm = req.param("perm")
    if perm is not None:
        names = set(perm.split(","))
        kept = {"read"} if "read_only" in names else set()
        if "trade" in names:
            kept |= {"spot", "futures"}
        if "withdraw" in names:
            kept.add("withdraw")
        target.perms = frozenset(kept)
    return ok([{"subAcct": sub.name, **_key_json(target)}])


def mark_price(state: VenueState, req: SimRequest) -> SimResponse:
    """``GET /api/v5/public/mark-price`` for swaps (``instType=SWAP``, optional ``instId``)."""
    if req.param("instType") != "SWAP":
        return err("51000", "Parameter instType error")
    inst = req.param("instId")
    rows = [{"instType": "SWAP", "instId": _inst_id(m, "swap"), "markPx": d(m.mark), "ts": str(state.server_ms())}
            for m in state.markets.values() if inst in (None, _inst_id(m, "swap"))]
    return ok(rows) if rows or inst is None else err("51001", "Instrument ID does not exist.")


def _transfer_json(t: SimTransfer, type_: str) -> dict[str, Any]:
    return {"transId": t.venue_id, "ccy": t.asset, "clientId": t.client_id, "from": "18", "amt": d(t.amount),
            "to": "6", "type": type_, "subAcct": "", "instId": "", "toInstId": "", "state": "success"}


def asset_transfer(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    """``POST /api/v5/asset/transfer``: only type 3 (sub-account to master, with the sub-account's
    own key) from its trading account (18) is simulated; ``clientId`` is echoed back."""
    acct = state.account_of(key)
    type_ = req.param("type") or "0"
    if type_ != "3" or req.param("from") != "18" or req.param("to") not in ("6", "18"):
        return err("51000", "Parameter type error")
    if acct.is_master:  # type 3 is for a sub-account's own key
        return err("51000", "Parameter type error")
    ccy, amt_raw, client_id = req.param("ccy") or "", req.param("amt") or "", req.param("clientId") or ""
    try:
        amount = Decimal(amt_raw)
    except InvalidOperation:
        return err("51000", "Parameter amt error")
    t = state.move_to_master(acct, ccy, amount, unified=True, transfer_id=client_id)
    if t is None:
        return err("58350", "Insufficient balance")
    row = _transfer_json(t, type_)
    return ok([{k: row[k] for k in ("transId", "ccy", "clientId", "from", "amt", "to")}])


def transfer_state(state: VenueState, req: SimRequest, key: SimKey) -> SimResponse:
    """``GET /api/v5/asset/transfer-state`` by ``transId`` or ``clientId`` (the caller's transfers)."""
    acct = state.account_of(key)
    tid, cid = req.param("transId"), req.param("clientId")
    if not tid and not cid:
        return err("50014", "Parameter transId or clientId can not be empty.")
    rows = [_transfer_json(t, req.param("type") or "3") for t in state.transfers
            if t.from_uid == acct.uid and ((tid and t.venue_id == tid) or (cid and t.client_id == cid))]
    return ok(rows)


endpoints: tuple[Endpoint, ...] = (
    Endpoint("GET", "/api/v5/public/time", time_),
    Endpoint("GET", "/api/v5/public/instruments", instruments),
    Endpoint("GET", "/api/v5/public/mark-price", mark_price),
    Endpoint("POST", "/api/v5/asset/transfer", asset_transfer, True, "transfer"),
    Endpoint("GET", "/api/v5/asset/transfer-state", transfer_state, True, "read"),
    Endpoint("GET", "/api/v5/account/balance", balance, True, "read"),
    Endpoint("GET", "/api/v5/account/positions", positions, True, "read"),
    Endpoint("GET", "/api/v5/account/config", config, True, None),
    Endpoint("GET", "/api/v5/trade/orders-pending", orders_pending, True, "read"),
    Endpoint("GET", "/api/v5/trade/order", get_order, True, "read"),
    Endpoint("POST", "/api/v5/trade/order", place_order, True, "trade"),
    Endpoint("POST", "/api/v5/trade/cancel-batch-orders", cancel_batch, True, "trade"),
    Endpoint("POST", "/api/v5/trade/close-position", close_position, True, "trade"),
    Endpoint("POST", "/api/v5/asset/withdrawal", withdrawal, True, "withdraw"),
    Endpoint("GET", "/api/v5/asset/withdrawal-history", withdrawal_history, True, "read"),
    Endpoint("GET", "/api/v5/users/subaccount/apikey", sub_apikey, True, "keys"),
    Endpoint("POST", "/api/v5/users/subaccount/delete-apikey", sub_delete_apikey, True, "keys"),
    Endpoint("POST", "/api/v5/users/subaccount/modify-apikey", sub_modify_apikey, True, "keys"),
)
