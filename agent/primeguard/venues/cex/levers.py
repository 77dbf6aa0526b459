"""Circuit-breaker levers on a CEX sub-account: cancel every open order, close every position
reduce-only within a slippage cap, sell spot collateral into the loan asset within a slippage cap
(sliced by a maximum order size), sweep the freed loan asset to the PB's master account, disable
the client's keys.

The loops here are shared; what each venue call looks like lives in the exchange's module behind
:class:`primeguard.venues.cex.exchange.CexExchange` (looked up in the registry).

Every lever is idempotent and says what it did per item (``done`` / ``already_done`` /
``failed`` with a reason):

- orders: a second run finds nothing open (an "unknown order" answer on an empty book counts as
  already done);
- positions: each close carries a client order id derived from the action id and the position leg
  (``pg`` + 20 hex of sha256 over the action id and the leg's key: the symbol, plus ``#long`` /
  ``#short`` for a hedge-mode leg); a run first asks the venue for that id where the venue can be
  asked, so a resumed action never sends a second order, and a flat account needs nothing;
- keys: each exchange's own way (IP pin, key deletion, sub-member freeze), checking the current
  state first.

Slippage: venues taking a limit price close with limit IOC orders at mark ± cap (never worse than
the cap; unfilled → failed); a venue that only closes at market does so only when its last price is
within the cap of its mark price.

Hedge mode: every leg is closed on its own, naming the venue's position side.

Spot sales: each non-loan asset with a free spot balance is sold into the loan asset with limit
IOC orders at the venue's perpetual mark × (1 − cap), each at most ``max_order_notional`` (loan
asset units) at that price; slice ``i`` of an asset carries the client order id of
(action id, ``spot:ASSET#i``). A run first re-reads the free balances and looks up the action's
earlier slices (skipped, never re-sent), so a resumed action sells only what is still there.

Sweep: the free loan-asset balance moves to the master account with a transfer id derived from
the action id and the asset (OKX ``clientId``, Bybit ``transferId``), looked up first; Binance's
sub→master endpoint takes none, so there the balance read first is the guard.

Which key acts (least power that can do it): cancel, close, sell and sweep use the account's
``operator`` credential (a trading key on the sub-account held by the PB, with internal/universal
transfer to its master, never withdraw); key levers use the credential whose holder is
``key_admin`` (a master-account key that can only manage sub-account keys), falling back to a
``master`` one. A venue refusing a credential's power (or a missing credential) fails the item
with :data:`NO_POWER` in its detail; :meth:`CexLeverFailed.findings` turns each such item into a
critical ``lever_lacks_power`` finding.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

from primeguard.config.schema import CexAccountConfig, PrimeguardConfig
from primeguard.domain.errors import ConfigError, VenueError, VenuePermissionDenied
from primeguard.domain.findings import Finding, FindingCode, Severity
from primeguard.domain.model import Holder
from primeguard.domain.money import decimal_str, to_decimal
from primeguard.venues.cex.client import CexClientPool, public_key_of
from primeguard.venues.cex.collect import check_accounts
from primeguard.venues.cex.errors import DuplicateClientOrderId, ReduceOnlyRejected, VenueNotFound
from primeguard.venues.cex.exchange import (
    CexExchange,
    CloseFill,
    LeverItem,
    Status,
    fail_item,
    limit_price,
)
from primeguard.venues.cex.markets import MarketBook
from primeguard.venues.cex.registry import exchange_for
from primeguard.venues.checkpoints import checkpoint, step_name

__all__ = ["DEFAULT_MAX_ORDER_NOTIONAL", "DEFAULT_SLIPPAGE_CAP", "NO_POWER", "CexLeverFailed", "LeverItem",
           "LeverReport", "Status", "cancel_all_orders", "client_order_id", "close_all_positions", "close_positions",
           "disable_client_keys", "limit_price", "playbook_levers", "sell_spot_collateral", "sweep_to_master",
           "transfer_id"]

DEFAULT_SLIPPAGE_CAP = Decimal("0.02")
DEFAULT_MAX_ORDER_NOTIONAL = Decimal("250000")  # loan-asset units per spot order slice
MAX_SLICES = 500  # per asset and run: a sale needing more is cut short (the item says so)
NO_POWER = "lacks the power"  # in a failed item's detail: the credential was refused or is missing


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

    def __init__(self, message: str, reports: list[LeverReport], client_id: str | None = None) -> None:
        super().__init__(message)
        self.reports = reports
        self.client_id = client_id

    def findings(self) -> list[Finding]:
        """One critical ``lever_lacks_power`` finding per item a credential could not do (refused
        by the venue for want of permission, or no credential of the needed role configured)."""
        out: list[Finding] = []
        for r in self.reports:
            for i in r.items:
                if i.status == "failed" and NO_POWER in i.detail:
                    out.append(Finding(
                        FindingCode.LEVER_LACKS_POWER, Severity.CRITICAL, f"{r.account_id}/{r.lever}/{i.target}",
                        f"{r.lever} on {r.account_id} could not act on {i.target}: {i.detail}"[:500],
                        venue=r.venue, client_id=self.client_id,
                        details={"lever": r.lever, "action_id": r.action_id, "target": i.target}))
        return out


def client_order_id(action_id: str, instrument: str) -> str:
    """Deterministic client order id: the same action on the same instrument → the same id."""
    return "pg" + hashlib.sha256(f"{action_id}\x1f{instrument}".encode()).hexdigest()[:20]


def transfer_id(action_id: str, asset: str) -> str:
    """Deterministic transfer id (32 hex): the same action moving the same asset → the same id."""
    return hashlib.sha256(f"{action_id}\x1fsweep:{asset}".encode()).hexdigest()[:32]


def _holder_cred(account: CexAccountConfig, holder: Holder) -> str | None:
    return next((c.id for c in account.credentials if c.holder == holder), None)


def _power_item(target: str, exc: BaseException, venue: str, cred: str, what: str) -> LeverItem:
    """A failed item; a permission refusal names the credential and what it could not do."""
    item = fail_item(target, exc, venue)
    if isinstance(exc, VenuePermissionDenied) or "VenuePermissionDenied" in item.detail:
        return LeverItem(target, "failed", f"credential {cred} {NO_POWER} to {what}: {item.detail}"[:400],
                         item.order_id)
    return item


# --- cancel every open order ---------------------------------------------------------------------------


async def cancel_all_orders(account: CexAccountConfig, action_id: str, *, pool: CexClientPool | None = None,
                            base_dir: Path | None = None) -> LeverReport:
    """Cancel every open spot and futures order of the sub-account (operator key).

    Idempotent: a second run reports ``already_done``. Never raises for a venue fault (items say
    ``failed`` with the typed error); raises ConfigError only for a malformed account list.
    """
    return await _run("cancel_all_orders", account, action_id, pool, base_dir, _cancel)


async def _cancel(pool: CexClientPool, account: CexAccountConfig, action_id: str) -> list[LeverItem]:
    cred = _operator(account)
    ex = pool.exchange(account, cred)
    items = [_refined(i, cred, "cancel orders") for i in await exchange_for(account.venue).cancel_all(ex)]
    return items or [LeverItem("orders", "already_done", "no open orders")]


# --- close every position ------------------------------------------------------------------------------


def _fmt(x: Decimal) -> str:
    return decimal_str(x)


def _close_outcome(target: str, cid: str, size: Decimal, fill: CloseFill, mark: Decimal, price: Decimal | None,
                   cap: Decimal) -> LeverItem:
    if fill.filled is None:  # a market close (allowed only with last within the cap of mark)
        return LeverItem(target, "done", f"{fill.detail} (last within {_fmt(cap)} of mark {_fmt(mark)})", cid)
    if fill.filled >= size:
        return LeverItem(target, "done", f"closed {_fmt(size)} reduce-only at limit {_fmt(price or mark)} "
                         f"(mark {_fmt(mark)})", cid)
    return LeverItem(target, "failed", f"{fill.status}: filled {_fmt(fill.filled)} of {_fmt(size)} within the "
                     f"{_fmt(cap)} slippage cap (limit {_fmt(price or mark)}, mark {_fmt(mark)})", cid)


async def close_positions(exchange: CexExchange, ex: Any, book: MarketBook, action_id: str,
                          cap: Decimal) -> list[LeverItem]:
    """The one idempotent close loop: every open leg, at most one reduce-only order per action and leg.

    Per leg: look up the action's client order id on the venue (an order from this action already
    exists → failed, "propose a new action": the lever never sends twice), check the slippage guard,
    send one close naming the leg's side in hedge mode, report the fill. A venue answer that there
    is nothing left to reduce, or that the client id is taken, is ``already_done``. Raises
    VenueError only when the positions cannot be listed.
    """
    items: list[LeverItem] = []
    for p in await exchange.open_positions(ex, book):
        target = f"position:{p.key}"
        if p.problem is not None:
            items.append(LeverItem(target, "failed", p.problem))
            continue
        cid = client_order_id(action_id, p.key)
        try:
            prior = await exchange.prior_close(ex, p, cid)
        except Exception as exc:
            items.append(fail_item(target, exc, exchange.name))
            continue
        if prior is not None:
            items.append(LeverItem(target, "failed", f"order {cid} from this action is already {prior} and "
                                   f"{_fmt(p.size)} remains open: propose a new action", cid))
            continue
        price, refusal = exchange.close_guard(p, cap)
        if refusal is not None:
            items.append(LeverItem(target, "failed", refusal))
            continue
        try:
            fill = await exchange.place_close(ex, p, cid, price)
        except (ReduceOnlyRejected, DuplicateClientOrderId) as exc:
            items.append(LeverItem(target, "already_done", f"venue: {exc}"[:200], cid))
            continue
        except VenueNotFound:
            items.append(LeverItem(target, "already_done", "position no longer exists", cid))
            continue
        except Exception as exc:
            items.append(fail_item(target, exc, exchange.name))
            continue
        items.append(_close_outcome(target, cid, p.size, fill, p.mark, price, cap))
    return items


async def close_all_positions(account: CexAccountConfig, action_id: str, *,
                              slippage_cap: Decimal = DEFAULT_SLIPPAGE_CAP, pool: CexClientPool | None = None,
                              base_dir: Path | None = None) -> LeverReport:
    """Close every futures position leg reduce-only (operator key), never beyond ``slippage_cap``
    (a fraction of the mark price, 0 < cap < 0.5) from the mark price.

    Idempotent: one order per action and leg at most; a flat account reports ``already_done``.
    Never raises for a venue fault (items say ``failed``).

    Raises:
        ConfigError: a slippage cap outside (0, 0.5), or a malformed account list.
    """
    if not (Decimal(0) < slippage_cap < Decimal("0.5")):
        raise ConfigError(f"slippage cap {slippage_cap} must be between 0 and 0.5")

    async def run(p: CexClientPool, a: CexAccountConfig, act: str) -> list[LeverItem]:
        cred = _operator(a)
        ex = p.exchange(a, cred)
        book = await p.markets(a)
        items = [_refined(i, cred, "close positions")
                 for i in await close_positions(exchange_for(a.venue), ex, book, act, slippage_cap)]
        return items or [LeverItem("positions", "already_done", "no open positions")]

    return await _run("close_all_positions", account, action_id, pool, base_dir, run)


# --- disable the client's keys -------------------------------------------------------------------------


async def disable_client_keys(account: CexAccountConfig, action_id: str, *, pool: CexClientPool | None = None,
                              base_dir: Path | None = None) -> LeverReport:
    """Stop the client's keys on the sub-account, the exchange's own way, with the ``key_admin``
    credential (a ``master`` one only when no key_admin is configured).

    Idempotent (the current state is read first). Never raises for a venue fault; without such a
    credential, or when the venue refuses it, the items fail saying what it could not do.
    """

    async def run(p: CexClientPool, a: CexAccountConfig, act: str) -> list[LeverItem]:
        cred = _holder_cred(a, Holder.KEY_ADMIN) or _holder_cred(a, Holder.MASTER)
        if cred is None:
            return [LeverItem("keys", "failed", f"no credential with holder 'key_admin' is configured: primeguard "
                              f"{NO_POWER} to disable the client's keys (only a master-account key may)")]
        ex = p.exchange(a, cred)
        items = await exchange_for(a.venue).disable_client_keys(
            ex, a, lambda cred_id: public_key_of(a, cred_id, p.base_dir))
        return [_refined(i, cred, "disable the client's key") for i in items] or [
            LeverItem("keys", "already_done", "no client keys configured")]

    return await _run("disable_client_keys", account, action_id, pool, base_dir, run)


def _refined(item: LeverItem, cred: str, what: str) -> LeverItem:
    if item.status == "failed" and "VenuePermissionDenied" in item.detail and NO_POWER not in item.detail:
        return LeverItem(item.target, "failed", f"credential {cred} {NO_POWER} to {what}: {item.detail}"[:400],
                         item.order_id)
    return item


# --- sell spot collateral into the loan asset ----------------------------------------------------------


def _floor(x: Decimal, step: Decimal) -> Decimal:
    return (x / step).to_integral_value(rounding=ROUND_FLOOR) * step


async def _sell_one(exchange: CexExchange, ex: Any, book: MarketBook, action_id: str, cred: str, asset: str,
                    qty: Decimal, loan: str, cap: Decimal, max_notional: Decimal) -> list[LeverItem]:
    """Sell ``qty`` of ``asset`` into ``loan`` in slices; see the module docstring."""
    target = f"spot:{asset}"
    market = book.spot(asset, loan)
    if market is None:
        return [LeverItem(target, "failed", f"no {asset}/{loan} spot market on {exchange.name}: not sold")]
    sellable = _floor(qty, market.step)
    if sellable <= 0:
        return [LeverItem(target, "already_done", f"{_fmt(qty)} {asset} is below one order step")]
    try:
        ref = await exchange.reference_price(ex, book, asset, loan)
    except Exception as exc:
        return [fail_item(target, exc, exchange.name)]
    price = limit_price(ref, "sell", cap, market.tick)
    per_slice = _floor(max_notional / price, market.step)
    if per_slice <= 0:
        return [LeverItem(target, "failed", f"the maximum order size {_fmt(max_notional)} {loan} is below one "
                          f"{asset} step at {_fmt(price)}")]
    items: list[LeverItem] = []
    index = 0
    while index < MAX_SLICES:  # slices this action already sent: never sent again
        cid = client_order_id(action_id, f"{target}#{index}")
        try:
            prior = await exchange.prior_spot_order(ex, market, cid)
        except Exception as exc:
            return [*items, fail_item(f"{target}#{index}", exc, exchange.name)]
        if prior is None:
            break
        earlier = _fmt(prior.filled or Decimal(0))
        items.append(LeverItem(f"{target}#{index}", "already_done",
                               f"slice sent earlier by this action: {prior.status}, filled {earlier}", cid))
        index += 1
    remaining = sellable
    while remaining > 0:
        slice_target = f"{target}#{index}"
        if index >= MAX_SLICES:
            items.append(LeverItem(target, "failed", f"{_fmt(remaining)} {asset} left after {MAX_SLICES} slices"))
            break
        size = min(per_slice, remaining)
        cid = client_order_id(action_id, slice_target)
        try:
            fill = await exchange.place_spot_sell(ex, market, size, price, cid)
        except Exception as exc:
            items.append(_power_item(slice_target, exc, exchange.name, cred, f"sell {asset} spot"))
            break
        filled = fill.filled or Decimal(0)
        if filled < size:
            items.append(LeverItem(slice_target, "failed", f"{fill.status}: filled {_fmt(filled)} of {_fmt(size)} "
                                   f"{asset} within the {_fmt(cap)} slippage cap (limit {_fmt(price)}, mark "
                                   f"{_fmt(ref)})", cid))
            break
        items.append(LeverItem(slice_target, "done", f"sold {_fmt(size)} {asset} for {loan} at limit {_fmt(price)} "
                               f"or better (mark {_fmt(ref)})", cid))
        remaining -= size
        index += 1
    return items


async def sell_spot_collateral(account: CexAccountConfig, action_id: str, *, loan_asset: str,
                               slippage_cap: Decimal = DEFAULT_SLIPPAGE_CAP,
                               max_order_notional: Decimal = DEFAULT_MAX_ORDER_NOTIONAL,
                               pool: CexClientPool | None = None, base_dir: Path | None = None) -> LeverReport:
    """Sell every free spot asset other than ``loan_asset`` into it (operator key): limit IOC slices
    of at most ``max_order_notional`` loan-asset units, never below the perpetual mark × (1 − cap).

    Idempotent: balances are re-read and the action's earlier slices looked up first, so a second
    run sells nothing more (``already_done``). Never raises for a venue fault.

    Raises:
        ConfigError: a cap outside (0, 0.5) or a maximum order size that is not positive.
    """
    if not (Decimal(0) < slippage_cap < Decimal("0.5")):
        raise ConfigError(f"slippage cap {slippage_cap} must be between 0 and 0.5")
    if not (max_order_notional.is_finite() and max_order_notional > 0):
        raise ConfigError(f"maximum order size {max_order_notional} must be positive")

    async def run(p: CexClientPool, a: CexAccountConfig, act: str) -> list[LeverItem]:
        cred = _operator(a)
        ex = p.exchange(a, cred)
        book = await p.markets(a)
        exchange = exchange_for(a.venue)
        free = await exchange.spot_free(ex)
        items: list[LeverItem] = []
        for asset, qty in sorted(free.items()):
            if asset != loan_asset:
                items.extend(await _sell_one(exchange, ex, book, act, cred, asset, qty, loan_asset, slippage_cap,
                                             max_order_notional))
        if not any(i.status in ("done", "failed") for i in items):
            items.append(LeverItem("spot", "already_done", f"no spot collateral left to sell into {loan_asset}"))
        return items

    return await _run("sell_spot", account, action_id, pool, base_dir, run)


# --- sweep the freed loan asset to the PB's master account ---------------------------------------------


async def sweep_to_master(account: CexAccountConfig, action_id: str, *, assets: tuple[str, ...],
                          pool: CexClientPool | None = None, base_dir: Path | None = None) -> LeverReport:
    """Move the free balance of each of ``assets`` from the sub-account to the PB's master account
    (operator key; transfer ids derived from the action id and looked up first where the venue has
    them). Idempotent; never raises for a venue fault."""

    async def run(p: CexClientPool, a: CexAccountConfig, act: str) -> list[LeverItem]:
        cred = _operator(a)
        ex = p.exchange(a, cred)
        exchange = exchange_for(a.venue)
        items: list[LeverItem] = []
        for asset in assets:
            try:  # e.g. Binance: the futures wallet's free part to spot first
                moved = await exchange.consolidate(ex, asset)
            except Exception as exc:
                items.append(_power_item(f"consolidate:{asset}", exc, a.venue, cred,
                                         f"gather {asset} into the wallet it sweeps from"))
                continue
            if moved is not None:
                items.append(LeverItem(f"consolidate:{asset}", "done", moved))
        free = await exchange.spot_free(ex)
        for asset in assets:
            target = f"transfer:{asset}"
            tid = transfer_id(act, asset)
            try:
                prior = await exchange.prior_transfer(ex, a, asset, tid)
                if prior is not None:
                    items.append(LeverItem(target, "already_done", f"transfer {prior} of this action already made",
                                           tid))
                    continue
                amount = free.get(asset, Decimal(0))
                if amount <= 0:
                    items.append(LeverItem(target, "already_done", f"no free {asset} left on the sub-account"))
                    continue
                vid = await exchange.transfer_to_master(ex, a, asset, amount, tid)
                items.append(LeverItem(target, "done", f"moved {_fmt(amount)} {asset} to the master account "
                                       f"(transfer {vid or tid})", tid))
            except Exception as exc:
                items.append(_power_item(target, exc, a.venue, cred, f"move {asset} to the master account"))
        return items

    return await _run("sweep_to_master", account, action_id, pool, base_dir, run)


# --- plumbing -------------------------------------------------------------------------------------------


def _operator(account: CexAccountConfig) -> str:
    if account.operator is None:
        raise ConfigError(f"account {account.id}: no operator credential configured for levers: primeguard "
                          f"{NO_POWER} to trade or move funds there")
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
        items = [fail_item("account", exc, account.venue)]
    return LeverReport(lever, action_id, account.id, account.venue, tuple(items))


def loan_asset_of(cfg: PrimeguardConfig, client_id: str) -> str | None:
    """The client's loan currency from the config (None: the client has no loan configured)."""
    client = next((c for c in cfg.clients if c.id == client_id), None)
    return None if client is None or client.loan is None else client.loan.asset


def playbook_levers(cfg: PrimeguardConfig, *, config_dir: Path | None = None,
                    rate_limit_ms: float | None = None) -> dict[str, Any]:
    """Levers for the playbook engine on every CEX account of the action's client:

    - ``halt_cex``: cancel orders, disable client keys;
    - ``liquidate_cex``: cancel orders, close futures, sell spot into the loan asset, sweep the loan
      asset to the master account, disable client keys (in that order, per account);
    - ``sell_spot_cex`` / ``sweep_to_master_cex``: those two steps alone (for plans naming them).

    Action params: ``slippage_cap`` (default 0.02), ``max_order_notional`` (loan-asset units per
    spot slice), ``loan_asset`` (default: the client's configured loan currency). A lever raises
    :class:`CexLeverFailed` when any item failed (its :meth:`~CexLeverFailed.findings` name what a
    credential could not do; re-running is safe: every step is idempotent). ``rate_limit_ms``
    shortens ccxt's per-key pacing (tests only)."""

    def make(steps: tuple[str, ...]) -> Callable[[Any], Awaitable[Mapping[str, Any]]]:
        async def lever(action: Any) -> Mapping[str, Any]:
            accounts = [a for a in cfg.cex_accounts if a.client == action.client_id]
            params = getattr(action, "params", None) or {}
            cap = to_decimal(params.get("slippage_cap", DEFAULT_SLIPPAGE_CAP), what="slippage_cap")
            slice_max = to_decimal(params.get("max_order_notional", DEFAULT_MAX_ORDER_NOTIONAL),
                                   what="max_order_notional")
            loan = params.get("loan_asset") or loan_asset_of(cfg, action.client_id)
            if loan is None and ("sell" in steps or "sweep" in steps):
                raise ConfigError(f"client {action.client_id} has no loan currency: nothing to sell into or sweep")
            async with CexClientPool(base_dir=config_dir, rate_limit_ms=rate_limit_ms) as pool:
                async def one(a: CexAccountConfig) -> list[LeverReport]:
                    out: list[LeverReport] = []
                    if "cancel" in steps:
                        out.append(await cancel_all_orders(a, action.id, pool=pool))
                        checkpoint(step_name(action, a.id, out[-1].lever))
                    if "close" in steps:
                        out.append(await close_all_positions(a, action.id, slippage_cap=cap, pool=pool))
                        checkpoint(step_name(action, a.id, out[-1].lever))
                    if "sell" in steps:
                        out.append(await sell_spot_collateral(a, action.id, loan_asset=str(loan), slippage_cap=cap,
                                                              max_order_notional=slice_max, pool=pool))
                        checkpoint(step_name(action, a.id, out[-1].lever))
                    if "sweep" in steps:
                        out.append(await sweep_to_master(a, action.id, assets=(str(loan),), pool=pool))
                        checkpoint(step_name(action, a.id, out[-1].lever))
                    if "disable" in steps:
                        out.append(await disable_client_keys(a, action.id, pool=pool))
                        checkpoint(step_name(action, a.id, out[-1].lever))
                    return out

                reports = [r for rs in await asyncio.gather(*(one(a) for a in accounts)) for r in rs]
            failed = [f"{r.account_id}:{r.lever}:{i.target}" for r in reports for i in r.items if i.status == "failed"]
            if failed:
                raise CexLeverFailed(f"{len(failed)} lever item(s) failed: {', '.join(failed)[:300]}", reports,
                                     action.client_id)
            return {"reports": [r.to_json() for r in reports]}

        return lever

    return {"halt_cex": make(("cancel", "disable")),
            "liquidate_cex": make(("cancel", "close", "sell", "sweep", "disable")),
            "sell_spot_cex": make(("sell",)), "sweep_to_master_cex": make(("sweep",))}
