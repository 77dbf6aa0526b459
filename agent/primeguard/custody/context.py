"""Build what the policy needs to decide a withdrawal from live data: a fresh price, the client's
LTV now and after the withdrawal, its ladder rung, whether it is blind, and recent outflows in USD.

Everything comes from a fresh collection of the venues (not from a cache), because the decision
at execution time must see the world as it is then. Unknown stays ``None``: the policy denies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from primeguard.config.schema import PrimeguardConfig
from primeguard.domain.observation import Observation
from primeguard.pipeline.collect import collect
from primeguard.pipeline.evaluate import Evaluation, evaluate
from primeguard.pipeline.haircuts import load_price_history
from primeguard.policy.inputs import ApprovalGiven, DrawContext, DrawRequest, WithdrawalContext, WithdrawalRequest
from primeguard.policy.policyset import PolicySet
from primeguard.risk.ladder import LadderState, LadderStatus
from primeguard.risk.limits import after_draw, after_withdrawal
from primeguard.risk.pricing import select_prices
from primeguard.store import repos
from primeguard.store.db import Store


class LiveContext:
    """The live facts a withdrawal decision needs, read fresh on every call (a full collection, not a cache).
    Synchronous: call it from a worker thread. Reads only; never writes, signs or sends."""

    def __init__(self, cfg: PrimeguardConfig, store: Store, policy: PolicySet | None) -> None:
        self.cfg = cfg
        self.store = store
        self.policy = policy

    def priced_asset(self, chain: str, symbol: str) -> str:
        """The priced asset of ``symbol`` on ``chain`` (WETH -> ETH); an unknown symbol is returned as is. Pure."""
        if symbol == "ETH":
            return "ETH"
        for t in self.cfg.tokens_on(chain):
            if t.symbol == symbol:
                return t.asset
        return symbol

    def _client_now(self, client_id: str) -> tuple[Observation, Evaluation, str | None]:
        """A fresh collection, the client evaluated on it (stored price history for volatility
        haircuts), and its ladder state: the daemon's stored rung or this evaluation's, the higher."""
        obs, _ = _run(collect(self.cfg))
        with self.store.session(readonly=True) as s:
            row = repos.latest_metric(s, client_id)
        ladder = {client_id: LadderStatus(LadderState[row.ladder_state.upper()], row.at)} if row else {}
        ev = evaluate(self.cfg, obs, policy=self.policy, ladder=ladder, peaks={},
                      clients={client_id}, with_stress=False,
                      price_history=load_price_history(self.store, self.policy, obs.taken_at))
        state = ev.ladder[client_id].state.label if client_id in ev.ladder else None
        if row is not None and client_id in ev.ladder:
            state = max(LadderState[row.ladder_state.upper()], ev.ladder[client_id].state).label
        return obs, ev, state

    def draw(self, req: DrawRequest) -> DrawContext:
        """The client now and after drawing ``req.amount`` more of its loan (read fresh; unknown stays None)."""
        obs, ev, state = self._client_now(req.client_id)
        val = ev.valuations.get(req.client_id)
        after = None
        if val is not None and not val.blind and req.amount.is_finite() and req.amount > 0:
            after = after_draw(val, req.amount, obs.taken_at)
        return DrawContext(ltv=None if val is None or val.blind else val.ltv,
                           post_ltv=None if after is None else after.ltv,
                           post_loan_to_collateral=None if after is None else after.loan_to_collateral,
                           post_stress_shortfall=None if after is None else after.stress_shortfall,
                           ladder_state=state, client_blind=val is None or val.blind, blind_reasons=blind_reasons(val))

    def __call__(self, req: WithdrawalRequest, approvals: list[ApprovalGiven],
                 recent_units: Sequence[tuple[datetime, Decimal]]) -> WithdrawalContext:
        obs, ev, state = self._client_now(req.client_id)
        now = obs.taken_at
        val = ev.valuations.get(req.client_id)
        params = ev.params.get(req.client_id)
        asset = self.priced_asset(req.chain, req.asset)
        price = price_age = None
        if params is not None:
            pick = select_prices(obs.prices, now, params, max_age_s=self.cfg.feed_budgets()).picks.get(asset)
            if pick is not None:
                price, price_age = pick.liability, pick.age_s  # the higher price: limits bite sooner
        ltv = post = None
        if val is not None and params is not None and not val.blind and price is not None:
            ltv = val.ltv
            remaining = val.haircut_collateral - req.amount * price * (1 - params.haircut(asset))
            post = Decimal(0) if val.loan == 0 else (val.loan / remaining if remaining > 0 else Decimal("Infinity"))
        # Financing ratio and worst stressed shortfall once the amount has left (stress re-run on the book).
        post_ltc = post_stress = None
        if val is not None and not val.blind and price is not None and req.amount > 0:
            after = after_withdrawal(val, req.account_id, asset, req.amount, req.amount * price, now)
            if after is not None:
                post_ltc, post_stress = after.loan_to_collateral, after.stress_shortfall
        recent = [(t, q * price) for t, q in recent_units] if price is not None else []
        # CEX: the venue's own withdrawal whitelist must contain the destination too (None: unknown).
        listed = None
        snap = next((x for x in obs.snapshots if x.account.id == req.account_id), None)
        if snap is not None and snap.ok and snap.whitelist is not None:
            listed = snap.whitelist.contains(req.asset, req.destination)
        return WithdrawalContext(
            usd_price=price, price_age_s=price_age, recent=recent, ltv=ltv, post_ltv=post, ladder_state=state,
            client_blind=val is None or val.blind, venue_whitelisted=listed, approvals=approvals,
            blind_reasons=blind_reasons(val), post_loan_to_collateral=post_ltc, post_stress_shortfall=post_stress)


def blind_reasons(val: Any) -> tuple[str, ...]:
    """What makes a client blind, for the denial's explanation: accounts not read, venues read in
    part (named with what is missing), assets without a fresh price."""
    if val is None:
        return ("the client could not be valued",)
    out = [f"account {a} not read" for a in val.blind_accounts]
    out += [f"{g.venue} {g.subject}: {g.missing}" for g in val.gaps]
    out += [f"no fresh price for {a}" for a in val.unpriced]
    return tuple(out)


def policy_decider(policy: PolicySet | None) -> Any:
    """A decide function for :class:`WithdrawalService`: the engine's decision under ``policy``; with no policy, a
    denial (``policy_missing``). Pure; never raises for a request."""
    from primeguard.policy.engine import deny_without_policy, evaluate_withdrawal

    def decide(req: WithdrawalRequest, ctx: WithdrawalContext) -> Any:
        if policy is None:
            return deny_without_policy(req.id)
        return evaluate_withdrawal(policy, req, ctx).decision

    return decide


def _run(coro: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    raise RuntimeError("LiveContext is synchronous: call it from a worker thread (asyncio.to_thread)")


__all__ = ["LiveContext", "policy_decider"]
