"""Ladder clocks survive restarts: a new Guardian over the same store resumes the rung, its
``entered_at``, the margin-call deadline and the cooldown clocks exactly, so restarting (once or
many times) between the margin call and its deadline still halts at the original deadline, and a
calm run started before a restart still counts after it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from primeguard.daemon.guardian import Guardian
from primeguard.risk.ladder import LadderState
from primeguard.store import audit, repos
from tests.daemon.policies import new_tier_ladder, policy_copy

pytestmark = pytest.mark.chain

# 75000 owed against 18 WETH at 3000 (8 % haircut) + 50000 USDC: LTV 0.752, in the new tier's
# margin-call band (0.70-0.80). ETH at 6000 brings it to 0.47, under every lower band.
WORLD = {
    "name": "clocks",
    "feeds": [{"asset": "ETH", "answer": "3000"}, {"asset": "USDC", "answer": "1", "heartbeat_s": 86400}],
    "clients": [{"id": "firm-a", "loan": {"principal": "75000"},
                 "wallets": [{"tokens": {"WETH": "18", "USDC": "50000"}}]}],
}
DEADLINE_S = 1200  # within the oracle's freshness (3600 s), so the price is still seen at the deadline
COOLDOWN_S = 600


@pytest.fixture
def world(sandbox_factory, tmp_path):
    sb = sandbox_factory(WORLD)
    pdir = policy_copy(tmp_path / "policies", new_tier_ladder(cooldown_s=COOLDOWN_S, deadline_s=DEADLINE_S))
    cfg = sb.config()
    cfg = cfg.model_copy(update={"policy_dir": str(pdir), "store": cfg.store.model_copy(
        update={"url": f"sqlite:///{tmp_path / 'clocks.db'}"})})
    return sb, cfg


def _restart(sb, cfg) -> Guardian:
    """A new daemon process as far as the ladder is concerned: nothing kept but the store."""
    return Guardian(cfg, config_dir=sb.workdir)


def test_restarts_between_margin_call_and_deadline_still_halt_at_the_original_deadline(world):
    sb, cfg = world
    t0 = datetime.now(UTC)
    g = _restart(sb, cfg)
    first = asyncio.run(g.sweep(now=t0)).evaluation.ladder["firm-a"]
    assert first.state == LadderState.MARGIN_CALL
    assert first.deadline == t0 + timedelta(seconds=DEADLINE_S)
    # Restart three times before the deadline, sweeping after each: never postponed.
    st = first
    for k in (1, 2, 3):
        g = _restart(sb, cfg)
        assert g.ladder["firm-a"] == st  # restored exactly, before any sweep
        st = asyncio.run(g.sweep(now=t0 + timedelta(seconds=k * 300))).evaluation.ladder["firm-a"]
        assert (st.state, st.entered_at, st.deadline) == (LadderState.MARGIN_CALL, first.entered_at, first.deadline)
    g = _restart(sb, cfg)
    assert g.ladder["firm-a"] == st
    out = asyncio.run(g.sweep(now=first.deadline))
    assert out.evaluation.valuations["firm-a"].ltv is not None  # halted because uncured, not because blind
    assert out.evaluation.ladder["firm-a"].state == LadderState.HALT
    with g.store.session(readonly=True) as s:
        stored = repos.get_ladder_state(s, "firm-a")
        assert stored is not None and stored.state == "halt"
    assert audit.verify(g.store).ok


def test_a_calm_run_started_before_a_restart_counts_after_it(world):
    sb, cfg = world
    t0 = datetime.now(UTC)
    g = _restart(sb, cfg)
    assert asyncio.run(g.sweep(now=t0)).evaluation.ladder["firm-a"].state == LadderState.MARGIN_CALL
    sb.set_price("ETH", Decimal("6000"))  # under every lower band: the cooldown clocks start
    calm = asyncio.run(g.sweep(now=t0 + timedelta(seconds=60))).evaluation.ladder["firm-a"]
    assert calm.state == LadderState.MARGIN_CALL and calm.below_since == t0 + timedelta(seconds=60)
    g = _restart(sb, cfg)
    assert g.ladder["firm-a"] == calm
    # The cooldown counted from before the restart: at 60 s + cooldown the client is back to normal.
    done = asyncio.run(g.sweep(now=t0 + timedelta(seconds=60 + COOLDOWN_S))).evaluation.ladder["firm-a"]
    assert done.state == LadderState.NORMAL
