"""Track record → tier eligibility (risk/eligibility.py): promotions, demotions on evidence, fail closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from primeguard.risk.eligibility import HistoryPoint, TierRequirement, review, track_record

D = Decimal
NOW = datetime(2026, 11, 1, tzinfo=UTC)
TIERS = (
    TierRequirement("new", D(1)),
    TierRequirement("standard", D(2), 30, D("0.10"), D(0)),
    TierRequirement("proven", D(9), 60, D("0.05"), D(0)),
)


def daily(days: int, *, equity=lambda d: D(2_000_000) + d * 1000, loan=D(1_000_000), state=lambda d: "normal",
          blind=lambda d: False) -> list[HistoryPoint]:
    """One point a day for ``days`` days up to NOW (day 0 is the oldest)."""
    return [HistoryPoint(NOW - timedelta(days=days - d), equity(d), loan, state(d), blind(d)) for d in range(days + 1)]


def test_clean_record_promotes_to_the_highest_tier_earned() -> None:
    r = review("gamma", "new", TIERS, daily(40), NOW)
    assert r.record.days == 40 and r.record.worst_drawdown == 0 and r.record.realised_pnl == 40_000
    assert [c.eligible for c in r.checks] == [True, True, False]
    assert r.action == "promote" and r.proposed_tier == "standard"
    assert r.checks[2].reasons == ("40 days of track record, proven needs 60",)
    assert review("gamma", "new", TIERS, daily(70), NOW).proposed_tier == "proven"


def test_a_margin_call_restarts_the_record_and_demotes() -> None:
    pts = daily(90, state=lambda d: "margin_call" if d == 80 else "normal")
    r = review("beta", "standard", TIERS, pts, NOW, since=NOW - timedelta(days=100))
    assert r.record.last_margin_call == NOW - timedelta(days=10)
    assert r.record.start == NOW - timedelta(days=10) and r.record.days == 10
    assert r.action == "demote" and r.proposed_tier == "new"
    assert "margin call" in r.why[0]
    # a margin call before the client entered its tier is not held against it
    r2 = review("beta", "standard", TIERS, pts, NOW, since=NOW - timedelta(days=5))
    assert r2.action == "hold" and r2.record.last_margin_call is None


def test_drawdown_is_on_net_equity_and_loan_draws_are_not_pnl() -> None:
    # equity and loan both rise by 1M on day 20 (a draw): no gain; equity dips 8 % of net equity on day 30
    pts = [HistoryPoint(p.at, p.equity + (D(1_000_000) if i >= 20 else 0) - (D(80_000) if i == 30 else 0),
                        p.loan + (D(1_000_000) if i >= 20 else 0), "normal")
           for i, p in enumerate(daily(40, equity=lambda d: D(2_000_000)))]
    rec = track_record(pts, NOW)
    assert rec.realised_pnl == 0 and rec.worst_drawdown == D("0.08")
    r = review("gamma", "new", TIERS, pts, NOW)
    assert r.proposed_tier == "standard"  # 8 % within standard's 10 %
    deeper = [HistoryPoint(p.at, p.equity - (D(120_000) if i == 30 else 0), p.loan, p.ladder_state)
              for i, p in enumerate(pts)]
    r = review("gamma", "new", TIERS, deeper, NOW)
    assert r.action == "hold" and "worst drawdown 20.00% above 10.00%" in r.checks[1].reasons[0]


def test_fail_closed_without_history() -> None:
    for pts, why in (([], "no stored history"), (daily(40, blind=lambda d: True), "no stored history"),
                     ([p for p in daily(40) if p.at < NOW - timedelta(days=3)], "history stale")):
        r = review("alpha", "proven", TIERS, pts, NOW)
        assert not any(c.eligible for c in r.checks)
        assert all(c.reasons[0].startswith(why) for c in r.checks)
        assert r.action == "hold" and r.proposed_tier == "proven"  # too little history never demotes


def test_a_gap_or_blind_stretch_restarts_the_record() -> None:
    pts = daily(40, blind=lambda d: 10 <= d < 13)  # three unseen days
    rec = track_record(pts, NOW)
    assert rec.start == NOW - timedelta(days=27) and rec.days == 27
    assert review("gamma", "new", TIERS, pts, NOW).action == "hold"


def test_losses_deny_promotion_and_demote_from_a_tier_that_asks_for_profit() -> None:
    pts = daily(40, equity=lambda d: D(2_000_000) - d * 100)  # slow bleed: -4,000 over the record
    r = review("gamma", "new", TIERS, pts, NOW)
    assert r.action == "hold" and any("realised PnL -4000 USD below 0" in x for x in r.checks[1].reasons)
    assert review("beta", "standard", TIERS, pts, NOW).action == "demote"


def test_a_tier_entered_after_the_last_sweep_has_no_record_yet() -> None:
    pts = [HistoryPoint(p.at - timedelta(hours=2), p.equity, p.loan, p.ladder_state) for p in daily(40)]
    r = review("gamma", "standard", TIERS, pts, NOW, since=NOW - timedelta(hours=1))
    assert r.record.problem is not None and r.record.problem.startswith("no seen sweep since")
    assert r.action == "hold" and not any(c.eligible for c in r.checks)
