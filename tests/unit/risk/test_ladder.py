"""The escalation ladder with explicit timestamps: up at once, down only after calm."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D  # noqa: N817

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from primeguard.domain.findings import FindingCode, Severity
from primeguard.risk.ladder import LadderState, LadderStatus, initial, ladder_finding, level_for, step, thresholds
from tests.unit.risk.helpers import BANDS, T0, at

S = LadderState


def run(seq, start=None, **kw):
    """Feed (seconds, ltv) pairs; return the statuses after each."""
    s = start or initial(T0)
    out = []
    for t, ltv in seq:
        s = step(s, None if ltv is None else D(ltv), at(t), BANDS, **kw)
        out.append(s)
    return out


def test_up_immediately_down_after_cooldown_with_hysteresis():
    s = run([(0, "0.55"), (10, "0.65")])
    assert [x.state for x in s] == [S.WARN, S.MARGIN_CALL]
    assert s[1].deadline == at(10) + timedelta(hours=4)
    s = run([(20, "0.59"),  # below 0.6 but inside the hysteresis band (≥ 0.58): no calm yet
             (30, "0.57"),  # below 0.58: the clock starts
             (200, "0.57"),  # 170 s of calm: not enough
             (330, "0.57")], start=s[1])  # 300 s: down to warn (0.57 ≥ 0.48)
    assert [x.state for x in s] == [S.MARGIN_CALL, S.MARGIN_CALL, S.MARGIN_CALL, S.WARN]
    assert s[0].below_since is None and s[1].below_since == at(30)
    assert s[3].entered_at == at(330) and s[3].deadline is None


def test_one_bounce_restarts_the_cooldown():
    s = run([(0, "0.65"), (10, "0.50"), (200, "0.59"), (300, "0.50"), (500, "0.50"), (600, "0.50")])
    assert [x.state for x in s] == [S.MARGIN_CALL] * 5 + [S.WARN]  # calm only from 300 s
    assert s[2].below_since is None and s[3].below_since == at(300)


def test_a_straight_recovery_drops_all_the_way_after_one_cooldown():
    s = run([(0, "0.85"), (10, "0.10"), (310, "0.10")])
    assert [x.state for x in s] == [S.LIQUIDATE, S.LIQUIDATE, S.NORMAL]


def test_a_staggered_recovery_drops_only_as_far_as_each_band_has_been_calm():
    # In halt (0.7): below 0.68 from 10 s, below 0.48 (warn's lower band) only from 200 s.
    s = run([(0, "0.75"), (10, "0.55"), (200, "0.30"), (310, "0.30"), (450, "0.30"), (500, "0.30")])
    assert [x.state for x in s] == [S.HALT, S.HALT, S.HALT, S.WARN, S.WARN, S.NORMAL]
    assert s[3].below_since == at(200)  # the warn band's calm carried over: it was real
    assert s[3].entered_at == at(310)


def test_margin_call_not_cured_by_its_deadline_escalates_to_halt():
    s = run([(0, "0.62"), (4 * 3600 + 1, "0.59")])  # 0.59 is still inside the band: not cured
    assert s[-1].state == S.HALT and s[-1].deadline is None
    cured = run([(0, "0.62"), (4 * 3600 - 100, "0.50"), (4 * 3600 + 1, "0.50")])
    assert cured[-1].state == S.MARGIN_CALL  # curing, calm clock running: not escalated
    late = run([(0, "0.62"), (4 * 3600 + 300, "0.50"), (4 * 3600 + 400, "0.59")])
    assert [x.state for x in late] == [S.MARGIN_CALL, S.MARGIN_CALL, S.HALT]  # below the band, then back in it
    assert run([(0, "0.62"), (4 * 3600, None)])[-1].state == S.HALT  # cannot see a cure: fail closed


def test_blind_or_unknown_never_moves_down():
    s = run([(0, "0.75")])[0]
    for k in range(1, 10):
        s = step(s, D("0.1"), at(400 * k), BANDS, blind=True)
        assert s.state == S.HALT and s.below_since is None
    assert step(s, None, at(9 * 3600), BANDS).state == S.HALT
    assert step(s, D("0.9"), at(9 * 3600), BANDS, blind=True).state == S.LIQUIDATE  # up still happens


def test_infinite_ltv_reaches_the_top():
    assert step(initial(T0), D("Infinity"), T0, BANDS).state == S.LIQUIDATE


def test_names_aliases_and_json():
    assert S.HEALTHY is S.NORMAL and S.WARNING is S.WARN
    assert S.parse("healthy") is S.NORMAL and S.parse("margin call") is S.MARGIN_CALL
    assert S["NORMAL"].label == "normal"
    with pytest.raises(ValueError, match="unknown ladder state"):
        S.parse("panic")
    j = run([(0, "0.65")])[0].to_json_dict()
    assert j == {"state": "margin_call", "entered_at": T0.isoformat(), "below_since": None,
                 "deadline": (T0 + timedelta(hours=4)).isoformat()}


def test_ladder_finding_one_per_rung():
    assert ladder_finding("c", initial(T0), D("0.1"), BANDS) is None
    f = ladder_finding("c", run([(0, "0.65")])[0], D("0.65"), BANDS)
    assert f is not None and f.code == FindingCode.LTV_MARGIN_CALL and f.severity == Severity.HIGH
    assert "65.00%" in f.message and "cure by" in f.message and f.details["threshold"] == "0.6"
    inf = ladder_finding("c", run([(0, "Infinity")])[0], D("Infinity"), BANDS)
    assert inf is not None and inf.code == FindingCode.LTV_LIQUIDATE and "no collateral" in inf.message


ltvs = st.one_of(st.decimals(min_value=0, max_value=1, places=3), st.none())


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=1, max_value=400), ltvs), min_size=1, max_size=40))
def test_property_up_at_once_and_never_down_without_a_full_calm_cooldown(seq):
    s: LadderStatus = initial(T0)
    t = 0
    history: list[tuple[int, D | None]] = []
    edges = thresholds(BANDS)
    for dt, ltv in seq:
        t += dt
        prev = s
        s = step(prev, ltv, at(t), BANDS)
        history.append((t, ltv))
        if ltv is not None:
            assert s.state >= level_for(ltv, BANDS)  # never below what the LTV reaches
        if s.state < prev.state:
            assert ltv is not None
            edge = edges[s.state] - BANDS.hysteresis  # lower band of the lowest rung just left
            streak_start = t
            for ht, hl in reversed(history):
                if hl is None or hl >= edge:
                    break
                streak_start = ht
            assert t - streak_start >= BANDS.cooldown_s
