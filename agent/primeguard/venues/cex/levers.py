"""Circuit-breaker levers on a CEX sub-account: cancel every open order, close every position
reduce-only within a slippage cap, disable the client's keys.

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

Which key acts: cancel/close use the account's ``operator`` credential (a trading key on the
sub-account held by the PB); key levers use a credential whose holder is ``master`` (the PB's
master account key: only a master may manage a sub-account's keys).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from primeguard.config.schema import CexAccountConfig, PrimeguardConfig
from primeguard.domain.errors import ConfigError, VenueError
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

__all__ = ["DEFAULT_SLIPPAGE_CAP", "CexLeverFailed", "LeverItem", "LeverReport", "Status",
           "cancel_all_orders", "client_order_id", "close_all_positions", "close_positions", "disable_client_keys",
           "limit_price", "playbook_levers"]

DEFAULT_SLIPPAGE_CAP = Decimal("0.02")


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


def _holder_cred(account: CexAccountConfig, holder: Holder) -> str | None:
    return next((c.id for c in account.credentials if c.holder == holder), None)


# --- cancel every open order ---------------------------------------------------------------------------


async def cancel_all_orders(account: CexAccountConfig, action_id: str, *, pool: CexClientPool | None = None,
                            base_dir: Path | None = None) -> LeverReport:
    """Cancel every open spot and futures order of the sub-account (operator key).

    Idempotent: a second run reports ``already_done``. Never raises for a venue fault (items say
    ``failed`` with the typed error); raises ConfigError only for a malformed account list.
    """
    return await _run("cancel_all_orders", account, action_id, pool, base_dir, _cancel)


async def _cancel(pool: CexClientPool, account: CexAccountConfig, action_id: str) -> list[LeverItem]:
    ex = pool.exchange(account, _operator(account))
    items = await exchange_for(account.venue).cancel_all(ex)
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
        ex = p.exchange(a, _operator(a))
        book = await p.markets(a)
        items = await close_positions(exchange_for(a.venue), ex, book, act, slippage_cap)
        return items or [LeverItem("positions", "already_done", "no open positions")]

    return await _run("close_all_positions", account, action_id, pool, base_dir, run)


# --- disable the client's keys -------------------------------------------------------------------------


async def disable_client_keys(account: CexAccountConfig, action_id: str, *, pool: CexClientPool | None = None,
                              base_dir: Path | None = None) -> LeverReport:
    """Stop the client's keys on the sub-account (master credential), the exchange's own way.

    Idempotent (the current state is read first). Never raises for a venue fault; without a
    credential whose holder is ``master`` the report has one failed item saying so.
    """

    async def run(p: CexClientPool, a: CexAccountConfig, act: str) -> list[LeverItem]:
        master = _holder_cred(a, Holder.MASTER)
        if master is None:
            return [LeverItem("keys", "failed", "no credential with holder 'master' is configured: only the "
                              "master account may disable a sub-account's keys")]
        ex = p.exchange(a, master)
        items = await exchange_for(a.venue).disable_client_keys(
            ex, a, lambda cred_id: public_key_of(a, cred_id, p.base_dir))
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
        items = [fail_item("account", exc, account.venue)]
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
                    checkpoint(step_name(action, a.id, out[-1].lever))
                    if "close" in steps:
                        out.append(await close_all_positions(a, action.id, slippage_cap=cap, pool=pool))
                        checkpoint(step_name(action, a.id, out[-1].lever))
                    out.append(await disable_client_keys(a, action.id, pool=pool))
                    checkpoint(step_name(action, a.id, out[-1].lever))
                    return out

                reports = [r for rs in await asyncio.gather(*(one(a) for a in accounts)) for r in rs]
            failed = [f"{r.account_id}:{r.lever}:{i.target}" for r in reports for i in r.items if i.status == "failed"]
            if failed:
                raise CexLeverFailed(f"{len(failed)} lever item(s) failed: {', '.join(failed)[:300]}", reports)
            return {"reports": [r.to_json() for r in reports]}

        return lever

    return {"halt_cex": make(("cancel", "disable")), "liquidate_cex": make(("cancel", "close", "disable"))}
