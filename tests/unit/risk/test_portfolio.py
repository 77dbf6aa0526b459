"""The whole-book entry points the sweep and the daemon call."""

from __future__ import annotations

import gc
import json
from dataclasses import replace
from decimal import Decimal as D  # noqa: N817

import pytest

from primeguard.domain.findings import FindingCode
from primeguard.risk.ladder import LadderState
from primeguard.risk.portfolio import assess, gc_paused, revalue_book
from primeguard.risk.stress import StressScenario
from tests.unit.risk.helpers import PARAMS, PRICES, T0, at, bal, book

HEALTHY = book("ok", [bal("bn", "USDC", "1000")], loan="100", venues={"bn": "binance"})
STRETCHED = book("hot", [bal("bn", "USDC", "1000")], loan="650", venues={"bn": "binance"})
BLIND = book("dark", [bal("bn", "USDC", "1000")], loan="100", blind=["okx-1"], venues={"okx-1": "okx"})


def test_revalue_book_keeps_order_and_shares_the_context():
    vals = revalue_book([HEALTHY, STRETCHED], PRICES, PARAMS, T0)
    assert [v.client_id for v in vals] == ["ok", "hot"]
    assert [v.ltv for v in vals] == [D("0.1"), D("0.65")]
    assert vals[0].context is vals[1].context


def test_per_client_parameters_and_no_guessing():
    strict = replace(PARAMS, haircuts={"USDC": D("0.5")})
    vals = revalue_book([HEALTHY, STRETCHED], PRICES, {"ok": PARAMS, "hot": strict}, T0)
    assert [v.ltv for v in vals] == [D("0.1"), D("1.3")]
    with pytest.raises(KeyError):
        revalue_book([HEALTHY], PRICES, {"hot": PARAMS}, T0)


def test_assess_steps_the_ladder_and_adds_one_ltv_finding():
    first = assess([HEALTHY, STRETCHED, BLIND], PRICES, PARAMS, T0, scenarios=[])
    by = {r.client_id: r for r in first}
    assert by["ok"].ladder.state == LadderState.NORMAL and not by["ok"].moved
    assert by["hot"].ladder.state == LadderState.MARGIN_CALL and by["hot"].moved
    assert [f.code for f in by["hot"].findings if f.code.value.startswith("ltv_")] == [FindingCode.LTV_MARGIN_CALL]
    assert by["dark"].valuation.blind and by["dark"].ladder.state == LadderState.NORMAL
    # Five minutes later the stretched client has cured to 0.5: calm starts, no move yet.
    cured = replace(STRETCHED, loan=replace(STRETCHED.loan, principal=D(500)))
    later = assess([cured], PRICES, PARAMS, at(60), ladder={"hot": by["hot"].ladder}, with_stress=False)[0]
    assert later.ladder.state == LadderState.MARGIN_CALL and later.ladder.below_since == at(60)
    done = assess([cured], PRICES, PARAMS, at(360), ladder={"hot": later.ladder}, with_stress=False)[0]
    assert done.ladder.state == LadderState.WARN and done.previous.state == LadderState.MARGIN_CALL


def test_client_risk_json_is_plain_and_complete():
    [r] = assess([STRETCHED], PRICES, PARAMS, T0, scenarios=[StressScenario("-30%", {"*": D("-0.3")})])
    doc = json.loads(json.dumps(r.to_json_dict()))
    assert doc["ladder"]["state"] == "margin_call" and doc["ladder"]["previous"] == "normal"
    assert doc["ladder"]["moved"] is True
    assert doc["stress"][0]["scenario"] == "-30%" and doc["stress"][0]["ltv"] == "0.65"  # all cash: no change
    assert doc["metrics"]["ltv"] == "0.65" and doc["prices"]["USDC"]["source"] == "oracle"
    assert any(f["code"] == "ltv_margin_call" for f in doc["findings"])


def test_gc_is_restored():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()
