"""Circuit-breaker levers on a CEX sub-account: cancel every open order, close every position
reduce-only within a slippage cap, disable the client's keys.

Every lever is idempotent and says what it did per item (``done`` / ``already_done`` /
``failed`` with a reason):

- orders: a second run finds nothing open (Binance's "-2011 unknown order" on an empty book, OKX's
  51400, count as already done);
- positions: each close carries a client order id derived from the action id and the instrument
  (``pg`` + 20 hex of sha256); a run first looks that id up, so a resumed action never sends a
  second order, and a flat account needs nothing;
- keys: Binance pins the key to an unused IP (192.0.2.1, TEST-NET-1; ordinary masters may do
  this; reversible), OKX deletes the sub-account key, Bybit freezes the sub-member; each checks the
  current state first.

Slippage: Binance and Bybit close with limit IOC orders at mark ± cap (never worse than the cap;
unfilled → failed). OKX closes with ``close-position`` (market) only when the position's last price
is within the cap of its mark price.

Which key acts: cancel/close use the account's ``operator`` credential (a trading key on the
sub-account held by the PB); key levers use a credential whose holder is ``master`` (the PB's
master account key: only a master may manage a sub-account's keys).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any, Literal

from primeguard.config.schema import CexAccountConfig, PrimeguardConfig
from primeguard.domain.errors import ConfigError, VenueAuthError, VenueError, VenuePermissionDenied
from primeguard.domain.model import Holder
from primeguard.domain.money import decimal_str, to_decimal
from primeguard.venues.cex.client import CexClientPool, MarketBook, public_key_of
from primeguard.venues.cex.collect import BYBIT_SETTLE_COINS, check_accounts
from primeguard.venues.cex.errors import (
    DuplicateClientOrderId,
    ReduceOnlyRejected,
    VenueBatchError,
    VenueNotFound,
    translate,
)
from primeguard.venues.cex.normalize import _data

Status = Literal["done", "already_done", "failed"]
UNUSED_IP = "192.0.2.1"  # TEST-NET-1 (RFC 5737): never anyone's address
DEFAULT_SLIPPAGE_CAP = Decimal("0.02")


@dataclass(frozen=True)
class LeverItem:
    target: str
    status: Status
    detail: str = ""
    order_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "status": self.status, "detail": self.detail, "order_id": self.order_id}


@dataclass(frozen=True)
class LeverReport:
    """What one lever did on one account."""

    lever: str
    action_id: str
    account_id: str
    venue: str
    items: tuple[LeverItem, ...]

    @property
    def ok(self) -> bool:
        return all(i.status != "failed" for i in self.items)

    @property
    def changed(self) -> bool:
        return any(i.status == "done" for i in self.items)

    def to_json(self) -> dict[str, Any]:
        return {"lever": self.lever, "action_id": self.action_id, "account": self.account_id, "venue": self.venue,
                "ok": self.ok, "changed": self.changed, "items": [i.to_json() for i in self.items]}


class CexLeverFailed(VenueError):
    """At least one lever item failed; the reports say which and why."""

    def __init__(self, message: str, reports: list[LeverReport]) -> None:
        super().__init__(message)
        self.reports = reports


def client_order_id(action_id: str, instrument: str) -> str:
    """Deterministic client order id: the same action on the same instrument → the same id."""
    return "pg" + hashlib.sha256(f"{action_id}\x1f{instrument}".encode()).hexdigest()[:20]


def limit_price(mark: Decimal, side: str, cap: Decimal, tick: Decimal) -> Decimal:
    """The worst acceptable price: sells at mark·(1−cap) rounded up, buys at mark·(1+cap) rounded down."""
    if side == "sell":
        raw, rounding = mark * (1 - cap), ROUND_CEILING
    else:
        raw, rounding = mark * (1 + cap), ROUND_FLOOR
    return (raw / tick).to_integral_value(rounding=rounding) * tick


async def _binance_write(ex: Any, call: Awaitable[Any]) -> Any:
    """Run a Binance write; refine its ambiguous -2015 with a probe: if the same key can still read its
    own restrictions, the key is valid and the answer meant "no permission"."""
    try:
        return await call
    except VenueAuthError as exc:
        if exc.code != "-2015":
            raise
        try:
            await ex.sapiGetAccountApiRestrictions()
        except Exception:
            raise exc from None
        raise VenuePermissionDenied("the key is valid but lacks the permission for this action", venue="binance",
                                    code="-2015") from None


def _fail(target: str, exc: BaseException, venue: str) -> LeverItem:
    err = translate(exc, venue)
    return LeverItem(target, "failed", f"{type(err).__name__}: {err}"[:300])


def _holder_cred(account: CexAccountConfig, holder: Holder) -> str | None:
    return next((c.id for c in account.credentials if c.holder == holder), None)


# --- cancel every open order ---------------------------------------------------------------------------


async def _cancel_binance(ex: Any) -> list[LeverItem]:
    items: list[LeverItem] = []
    spot, fut = await asyncio.gather(ex.privateGetOpenOrders(), ex.fapiPrivateGetOpenOrders())
    for market, rows, call in (("spot", spot, ex.privateDeleteOpenOrders),
                               ("futures", fut, ex.fapiPrivateDeleteAllOpenOrders)):
        for sym in sorted({str(r["symbol"]) for r in rows}):
            n = sum(1 for r in rows if r["symbol"] == sym)
            target = f"{market}:{sym}"
            try:
                await _binance_write(ex, call({"symbol": sym}))
                items.append(LeverItem(target, "done", f"cancelled {n} open order(s)"))
            except VenueNotFound:
                items.append(LeverItem(target, "already_done", "no open orders left"))
            except Exception as exc:
                items.append(_fail(target, exc, "binance"))
    return items


async def _cancel_okx(ex: Any) -> list[LeverItem]:
    items: list[LeverItem] = []
    rows = _data(await ex.privateGetTradeOrdersPending(), "okx")
    for start in range(0, len(rows), 20):
        batch = [{"instId": r["instId"], "ordId": r["ordId"]} for r in rows[start:start + 20]]
        try:
            answers = _data(await ex.privatePostTradeCancelBatchOrders(batch), "okx")
        except VenueBatchError as exc:
            answers = exc.items
        except Exception as exc:
            items.extend(_fail(f"order:{b['ordId']}", exc, "okx") for b in batch)
            continue
        by_id = {str(a.get("ordId")): a for a in answers}
        for b in batch:
            a = by_id.get(b["ordId"], {})
            code = str(a.get("sCode", ""))
            target = f"order:{b['instId']}:{b['ordId']}"
            if code == "0":
                items.append(LeverItem(target, "done", "cancelled", b["ordId"]))
            elif code in ("51400", "51401"):
                items.append(LeverItem(target, "already_done", "already filled or cancelled", b["ordId"]))
            else:
                items.append(LeverItem(target, "failed", f"[okx {code or '?'}] {str(a.get('sMsg', ''))[:120]}",
                                       b["ordId"]))
    return items


async def _cancel_bybit(ex: Any) -> list[LeverItem]:
    items: list[LeverItem] = []
    scopes: list[dict[str, Any]] = [{"category": "spot"}, *({"category": "linear", "settleCoin": s}
                                                             for s in BYBIT_SETTLE_COINS)]
    for scope in scopes:
        target = ":".join(str(v) for v in scope.values())
        try:
            open_rows = _data(await ex.privateGetV5OrderRealtime(dict(scope)), "bybit")["list"]
            if not open_rows:
                continue
            res = _data(await ex.privatePostV5OrderCancelAll(dict(scope)), "bybit")
            for r in res.get("list", []):
                items.append(LeverItem(f"{target}:{r.get('orderId')}", "done", "cancelled", str(r.get("orderId"))))
        except Exception as exc:
            items.append(_fail(target, exc, "bybit"))
    return items


async def cancel_all_orders(account: CexAccountConfig, action_id: str, *, pool: CexClientPool | None = None,
                            base_dir: Path | None = None) -> LeverReport:
    """Cancel every open spot and futures order of the sub-account (operator key)."""
    return await _run("cancel_all_orders", account, action_id, pool, base_dir, _cancel)


async def _cancel(pool: CexClientPool, account: CexAccountConfig, action_id: str) -> list[LeverItem]:
    ex = pool.exchange(account, _operator(account))
    fn = {"binance": _cancel_binance, "okx": _cancel_okx, "bybit": _cancel_bybit}[account.venue]
    items = await fn(ex)
    return items or [LeverItem("orders", "already_done", "no open orders")]


# --- close every position ------------------------------------------------------------------------------


def _fmt(x: Decimal) -> str:
    return decimal_str(x)


async def _close_binance(pool: CexClientPool, account: CexAccountConfig, ex: Any, action_id: str, cap: Decimal,
                         book: MarketBook) -> list[LeverItem]:
    items: list[LeverItem] = []
    for r in await ex.fapiPrivateV3GetPositionRisk():
        size = to_decimal(r["positionAmt"], what="positionAmt")
        if size == 0:
            continue
        sym = str(r["symbol"])
        m = book.swap(sym)
        target = f"position:{m.symbol if m else sym}"
        if m is None:
            items.append(LeverItem(target, "failed", "instrument unknown to primeguard"))
            continue
        cid = client_order_id(action_id, m.symbol)
        try:
            prior = await ex.fapiPrivateGetOrder({"symbol": sym, "origClientOrderId": cid})
            items.append(LeverItem(target, "failed", f"order {cid} from this action is already {prior.get('status')}"
                                   f" and {_fmt(size)} remains open: propose a new action", cid))
            continue
        except VenueNotFound:
            pass
        except Exception as exc:
            items.append(_fail(target, exc, "binance"))
            continue
        side = "sell" if size > 0 else "buy"
        mark = to_decimal(r["markPrice"], what="markPrice")
        price = limit_price(mark, side, cap, m.tick)
        try:
            res = await _binance_write(ex, ex.fapiPrivatePostOrder({
                "symbol": sym, "side": side.upper(), "type": "LIMIT", "timeInForce": "IOC",
                "quantity": _fmt(abs(size)), "price": _fmt(price), "reduceOnly": "true", "newClientOrderId": cid}))
        except (ReduceOnlyRejected, DuplicateClientOrderId) as exc:
            items.append(LeverItem(target, "already_done", f"venue: {exc}"[:200], cid))
            continue
        except Exception as exc:
            items.append(_fail(target, exc, "binance"))
            continue
        filled = to_decimal(res.get("executedQty", "0"), what="executedQty")
        items.append(_close_outcome(target, cid, abs(size), filled, str(res.get("status")), mark, price, cap))
    return items


def _close_outcome(target: str, cid: str, size: Decimal, filled: Decimal, status: str, mark: Decimal,
                   price: Decimal, cap: Decimal) -> LeverItem:
    if filled >= size:
        return LeverItem(target, "done", f"closed {_fmt(size)} reduce-only at limit {_fmt(price)} (mark {_fmt(mark)})",
                         cid)
    return LeverItem(target, "failed", f"{status}: filled {_fmt(filled)} of {_fmt(size)} within the {_fmt(cap)} "
                     f"slippage cap (limit {_fmt(price)}, mark {_fmt(mark)})", cid)


async def _close_bybit(pool: CexClientPool, account: CexAccountConfig, ex: Any, action_id: str, cap: Decimal,
                       book: MarketBook) -> list[LeverItem]:
    items: list[LeverItem] = []
    rows: list[dict[str, Any]] = []
    for settle in BYBIT_SETTLE_COINS:
        rows.extend(_data(await ex.privateGetV5PositionList({"category": "linear", "settleCoin": settle}),
                          "bybit")["list"])
    for r in rows:
        size = to_decimal(r["size"], what="size")
        if size == 0:
            continue
        sym = str(r["symbol"])
        m = book.swap(sym)
        target = f"position:{m.symbol if m else sym}"
        if m is None:
            items.append(LeverItem(target, "failed", "instrument unknown to primeguard"))
            continue
        cid = client_order_id(action_id, m.symbol)
        try:
            prior = _data(await ex.privateGetV5OrderRealtime({"category": "linear", "orderLinkId": cid}),
                          "bybit")["list"]
        except Exception as exc:
            items.append(_fail(target, exc, "bybit"))
            continue
        if prior:
            items.append(LeverItem(target, "failed", f"order {cid} from this action is already "
                                   f"{prior[0].get('orderStatus')} and {_fmt(size)} remains open: propose a new "
                                   f"action", cid))
            continue
        side = "sell" if r["side"] == "Buy" else "buy"
        mark = to_decimal(r["markPrice"], what="markPrice")
        price = limit_price(mark, side, cap, m.tick)
        try:
            await ex.privatePostV5OrderCreate({
                "category": "linear", "symbol": sym, "side": side.capitalize(), "orderType": "Limit",
                "qty": _fmt(size), "price": _fmt(price), "timeInForce": "IOC", "reduceOnly": True,
                "orderLinkId": cid})
            placed = _data(await ex.privateGetV5OrderRealtime({"category": "linear", "orderLinkId": cid}),
                           "bybit")["list"]
        except (ReduceOnlyRejected, DuplicateClientOrderId) as exc:
            items.append(LeverItem(target, "already_done", f"venue: {exc}"[:200], cid))
            continue
        except Exception as exc:
            items.append(_fail(target, exc, "bybit"))
            continue
        o = placed[0] if placed else {}
        filled = to_decimal(o.get("cumExecQty", "0"), what="cumExecQty")
        items.append(_close_outcome(target, cid, size, filled, str(o.get("orderStatus", "unknown")), mark, price, cap))
    return items


async def _close_okx(pool: CexClientPool, account: CexAccountConfig, ex: Any, action_id: str, cap: Decimal,
                     book: MarketBook) -> list[LeverItem]:
    items: list[LeverItem] = []
    for r in _data(await ex.privateGetAccountPositions(), "okx"):
        contracts = to_decimal(r["pos"], what="pos")
        if contracts == 0:
            continue
        inst = str(r["instId"])
        target = f"position:{inst}"
        mark, last = to_decimal(r["markPx"], what="markPx"), to_decimal(r["last"], what="last")
        deviation = abs(last - mark) / mark
        if deviation > cap:
            dev = _fmt(deviation.quantize(Decimal("0.0001")))
            items.append(LeverItem(target, "failed", f"last {_fmt(last)} is {dev} from mark {_fmt(mark)}, beyond "
                                   f"the {_fmt(cap)} cap: not closing at market"))
            continue
        cid = client_order_id(action_id, inst)
        params: dict[str, Any] = {"instId": inst, "mgnMode": r.get("mgnMode") or "cross", "clOrdId": cid}
        if r.get("posSide") in ("long", "short"):
            params["posSide"] = r["posSide"]
        try:
            await ex.privatePostTradeClosePosition(params)
            items.append(LeverItem(target, "done", f"closed {_fmt(abs(contracts))} contract(s) at market (last within "
                                   f"{_fmt(cap)} of mark {_fmt(mark)})", cid))
        except VenueNotFound:
            items.append(LeverItem(target, "already_done", "position no longer exists", cid))
        except Exception as exc:
            items.append(_fail(target, exc, "okx"))
    return items


async def close_all_positions(account: CexAccountConfig, action_id: str, *,
                              slippage_cap: Decimal = DEFAULT_SLIPPAGE_CAP, pool: CexClientPool | None = None,
                              base_dir: Path | None = None) -> LeverReport:
    """Close every futures position reduce-only, never beyond ``slippage_cap`` from the mark price."""
    if not (Decimal(0) < slippage_cap < Decimal("0.5")):
        raise ConfigError(f"slippage cap {slippage_cap} must be between 0 and 0.5")

    async def run(p: CexClientPool, a: CexAccountConfig, act: str) -> list[LeverItem]:
        ex = p.exchange(a, _operator(a))
        book = await p.markets(a)
        fn = {"binance": _close_binance, "okx": _close_okx, "bybit": _close_bybit}[a.venue]
        items = await fn(p, a, ex, act, slippage_cap, book)
        return items or [LeverItem("positions", "already_done", "no open positions")]

    return await _run("close_all_positions", account, action_id, pool, base_dir, run)


# --- disable the client's keys -------------------------------------------------------------------------


async def _disable_binance(pool: CexClientPool, account: CexAccountConfig, ex: Any) -> list[LeverItem]:
    items: list[LeverItem] = []
    for c in account.credentials:
        if c.holder != Holder.CLIENT:
            continue
        target = f"key:{c.id}"
        try:
            api_key = public_key_of(account, c.id, pool.base_dir)
            q = {"email": account.sub_account, "subAccountApiKey": api_key}
            cur = await ex.sapiGetSubAccountSubAccountApiIpRestriction(dict(q))
            ips = [str(x) for x in cur.get("ipList") or []]
            if ips == [UNUSED_IP]:
                items.append(LeverItem(target, "already_done", f"already pinned to {UNUSED_IP}"))
                continue
            await _binance_write(ex, ex.sapiV2PostSubAccountSubAccountApiIpRestriction(
                {**q, "status": "2", "ipAddress": UNUSED_IP}))
            items.append(LeverItem(target, "done", f"pinned to unused IP {UNUSED_IP}; previous IPs: "
                                   f"{', '.join(ips) or 'none'}"))
        except Exception as exc:
            items.append(_fail(target, exc, "binance"))
    return items


async def _disable_okx(pool: CexClientPool, account: CexAccountConfig, ex: Any) -> list[LeverItem]:
    items: list[LeverItem] = []
    for c in account.credentials:
        if c.holder != Holder.CLIENT:
            continue
        target = f"key:{c.id}"
        try:
            q = {"subAcct": account.sub_account, "apiKey": public_key_of(account, c.id, pool.base_dir)}
            if not _data(await ex.privateGetUsersSubaccountApikey(dict(q)), "okx"):
                items.append(LeverItem(target, "already_done", "key no longer exists"))
                continue
            await ex.privatePostUsersSubaccountDeleteApikey(dict(q))
            items.append(LeverItem(target, "done", "deleted the sub-account key"))
        except VenueNotFound:
            items.append(LeverItem(target, "already_done", "key no longer exists"))
        except Exception as exc:
            items.append(_fail(target, exc, "okx"))
    return items


async def _disable_bybit(pool: CexClientPool, account: CexAccountConfig, ex: Any) -> list[LeverItem]:
    target = f"sub-account:{account.sub_account}"
    if not any(c.holder == Holder.CLIENT for c in account.credentials):
        return []
    try:
        members = _data(await ex.privateGetV5UserQuerySubMembers(), "bybit").get("subMembers", [])
        me = next((m for m in members if str(m.get("uid")) == account.sub_account), None)
        if me is None:
            return [LeverItem(target, "failed", "the master key does not see this sub-account")]
        if str(me.get("status")) == "4":
            return [LeverItem(target, "already_done", "sub-member already frozen")]
        await ex.privatePostV5UserFrozenSubMember({"subuid": account.sub_account, "frozen": 1})
        return [LeverItem(target, "done", "froze the sub-member: its keys can no longer trade or withdraw")]
    except Exception as exc:
        return [_fail(target, exc, "bybit")]


async def disable_client_keys(account: CexAccountConfig, action_id: str, *, pool: CexClientPool | None = None,
                              base_dir: Path | None = None) -> LeverReport:
    """Stop the client's keys on the sub-account (master credential)."""

    async def run(p: CexClientPool, a: CexAccountConfig, act: str) -> list[LeverItem]:
        master = _holder_cred(a, Holder.MASTER)
        if master is None:
            return [LeverItem("keys", "failed", "no credential with holder 'master' is configured: only the "
                              "master account may disable a sub-account's keys")]
        ex = p.exchange(a, master)
        fn = {"binance": _disable_binance, "okx": _disable_okx, "bybit": _disable_bybit}[a.venue]
        items = await fn(p, a, ex)
        return items or [LeverItem("keys", "already_done", "no client keys configured")]

    return await _run("disable_client_keys", account, action_id, pool, base_dir, run)


# --- plumbing -------------------------------------------------------------------------------------------


def _operator(account: CexAccountConfig) -> str:
    if account.operator is None:
        raise ConfigError(f"account {account.id}: no operator credential configured for levers")
    return account.operator


_Runner = Callable[[CexClientPool, CexAccountConfig, str], Awaitable[list[LeverItem]]]


async def _run(lever: str, account: CexAccountConfig, action_id: str, pool: CexClientPool | None,
               base_dir: Path | None, fn: _Runner) -> LeverReport:
    check_accounts([account])
    if pool is None:
        async with CexClientPool(base_dir=base_dir) as own:
            return await _run(lever, account, action_id, own, base_dir, fn)
    try:
        items = await fn(pool, account, action_id)
    except ConfigError as exc:
        items = [LeverItem("config", "failed", str(exc)[:300])]
    except Exception as exc:
        items = [_fail("account", exc, account.venue)]
    return LeverReport(lever, action_id, account.id, account.venue, tuple(items))


def playbook_levers(cfg: PrimeguardConfig, *, config_dir: Path | None = None,
                    rate_limit_ms: float | None = None) -> dict[str, Any]:
    """Levers for the playbook engine: ``halt_cex`` (cancel orders, disable client keys) and
    ``liquidate_cex`` (cancel orders, close positions, disable client keys) on every CEX account of
    the action's client. A lever raises :class:`CexLeverFailed` when any item failed (re-running is
    safe: every step is idempotent). ``rate_limit_ms`` shortens ccxt's per-key pacing (tests only)."""

    def make(steps: tuple[str, ...]) -> Callable[[Any], Awaitable[Mapping[str, Any]]]:
        async def lever(action: Any) -> Mapping[str, Any]:
            accounts = [a for a in cfg.cex_accounts if a.client == action.client_id]
            params = getattr(action, "params", None) or {}
            cap = to_decimal(params.get("slippage_cap", DEFAULT_SLIPPAGE_CAP), what="slippage_cap")
            async with CexClientPool(base_dir=config_dir, rate_limit_ms=rate_limit_ms) as pool:
                async def one(a: CexAccountConfig) -> list[LeverReport]:
                    out = [await cancel_all_orders(a, action.id, pool=pool)]
                    if "close" in steps:
                        out.append(await close_all_positions(a, action.id, slippage_cap=cap, pool=pool))
                    out.append(await disable_client_keys(a, action.id, pool=pool))
                    return out

                reports = [r for rs in await asyncio.gather(*(one(a) for a in accounts)) for r in rs]
            failed = [f"{r.account_id}:{r.lever}:{i.target}" for r in reports for i in r.items if i.status == "failed"]
            if failed:
                raise CexLeverFailed(f"{len(failed)} lever item(s) failed: {', '.join(failed)[:300]}", reports)
            return {"reports": [r.to_json() for r in reports]}

        return lever

    return {"halt_cex": make(("cancel", "disable")), "liquidate_cex": make(("cancel", "close", "disable"))}
