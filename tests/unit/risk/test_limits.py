"""Limits that bite: financing caps, the stressed-shortfall limit (finding and withdrawal denial),
venue limits per client and for the whole book."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D  # noqa: N817

from primeguard.domain.decision import Outcome, ReasonCode
from primeguard.domain.findings import FindingCode
from primeguard.domain.model import VenueKind
from primeguard.policy.engine import evaluate_withdrawal
from primeguard.policy.loader import load
from primeguard.risk.limits import after_withdrawal, book_exposure, book_venue_findings, stress_findings, venue_findings
from primeguard.risk.stress import StressScenario, stress
from primeguard.risk.valuation import valuate
from tests.unit.policy.helpers import POLICIES, context, request
from tests.unit.risk.helpers import PARAMS, PRICES, T0, bal, book

ETH_DOWN_30 = StressScenario("ETH -30%", {"ETH": D("-0.30")})


def test_financing_cap_is_a_finding_per_tier() -> None:
    # Firm A's "new" tier finances 1:1. 100,000 own + 150,000 borrowed in USDC: loan / own = 1.5.
    b = book("firm-a", [bal("w", "USDC", "250000")], loan="150000")
    val = valuate(b, PRICES, replace(PARAMS, max_loan_to_collateral=D(1)), T0)
    assert val.net_equity == D(100_000) and val.loan_to_collateral == D("1.5")
    assert [f.code for f in val.findings] == [FindingCode.FINANCING_CAP_EXCEEDED]
    # The same book in the 2:1 tier is within its cap.
    ok = valuate(b, PRICES, replace(PARAMS, max_loan_to_collateral=D(2)), T0)
    assert not ok.findings


def test_gross_leverage_on_own_collateral() -> None:
    # 100 ETH long (300,000) with 100,000 own money and a 200,000 loan: gross exposure 3x own collateral.
    b = book("firm-a", [bal("w", "ETH", "100")], loan="200000")
    val = valuate(b, PRICES, replace(PARAMS, max_gross_leverage=D("2.5")), T0)
    assert val.gross_leverage == D(3)
    assert FindingCode.LEVERAGE_EXCEEDED in [f.code for f in val.findings]


def _eth_book() -> tuple[object, object]:
    # 100 ETH at 3,000 and 60,000 USDC against a 250,000 USDC loan; ETH haircut 15 %.
    b = book("firm-b", [bal("w", "ETH", "100"), bal("w", "USDC", "60000")], loan="250000",
             venues={"w": "evm:ethereum"})
    params = replace(PARAMS, max_stress_shortfall=D(0))
    return b, params


def test_stress_shortfall_above_the_limit_is_a_finding() -> None:
    b, params = _eth_book()
    r = stress(b, PRICES, params, T0, ETH_DOWN_30)  # type: ignore[arg-type]
    # stressed haircut collateral: 100 × 2,100 × 0.85 + 60,000 = 238,500 → shortfall 11,500
    assert r.haircut_collateral == D(238_500) and r.loan == D(250_000)
    (f,) = stress_findings("firm-b", [r], params)  # type: ignore[arg-type]
    assert f.code == FindingCode.STRESS_SHORTFALL_EXCEEDED and f.details["shortfall"] == "11500"
    assert stress_findings("firm-b", [r], replace(params, max_stress_shortfall=D(20_000))) == []  # type: ignore[arg-type]


def test_withdrawal_denied_by_the_stress_limit() -> None:
    # Without the withdrawal, ETH −30 % leaves 100 × 2,100 × 0.85 + 60,000 = 238,500 against 250,000:
    # 11,500 short. The standard tier allows $250k; here the limit is $20k. Withdrawing 10,000 USDC
    # takes the shortfall to 21,500: denied. 5,000 USDC (16,500) passes.
    b, params = _eth_book()
    params = replace(params, max_stress_shortfall=D(20_000))
    val = valuate(b, PRICES, params, T0)  # type: ignore[arg-type]
    big = after_withdrawal(val, "w", "USDC", D(10_000), D(10_000), T0, [ETH_DOWN_30])
    small = after_withdrawal(val, "w", "USDC", D(5_000), D(5_000), T0, [ETH_DOWN_30])
    assert big is not None and small is not None
    assert big.stress_shortfall == D(21_500) and small.stress_shortfall == D(16_500)
    assert big.stress_scenario == "ETH -30%"
    # Own collateral after: 360,000 − 250,000 − 10,000 = 100,000 → loan / own = 2.5
    assert big.loan_to_collateral == D("2.5")

    # The policy's stress guard: the shipped standard tier's limit is $250,000.
    policy = load(POLICIES)
    limit = policy.tiers["standard"].max_stress_shortfall_usd
    assert limit == D(250_000)
    req = request(client_id="beta", account_id="beta-bybit", venue=VenueKind.BYBIT, asset="USDC",
                  destination="0xA6243595f54e5C899F5246b256C0f4E585274735", amount=D(10_000))
    denied = evaluate_withdrawal(policy, req, context(post_stress_shortfall=limit + 1))
    assert denied.decision.outcome is Outcome.DENY and ReasonCode.STRESS_LIMIT in denied.decision.reasons
    assert "stress-shortfall-holds" in denied.decision.rule_ids
    allowed = evaluate_withdrawal(policy, req, context(post_stress_shortfall=limit))
    assert allowed.decision.outcome is Outcome.ALLOW


def test_financing_guard_denies_a_withdrawal_past_the_cap() -> None:
    policy = load(POLICIES)
    req = request(amount=D(1000))  # alpha, tier proven: 9:1 (10x)
    ev = evaluate_withdrawal(policy, req, context(post_loan_to_collateral=D("9.0001")))
    assert ev.decision.outcome is Outcome.DENY and ev.decision.reasons == (ReasonCode.FINANCING_CAP,)
    assert "financing-cap-holds" in ev.decision.rule_ids and "9:1" in ev.decision.explanation
    assert evaluate_withdrawal(policy, req, context(post_loan_to_collateral=D(9))).decision.outcome is Outcome.ALLOW


def test_venue_limit_breach_for_a_client_and_for_the_book() -> None:
    a = book("a", [bal("a-bin", "USDC", "800000"), bal("a-w", "USDC", "200000")],
             venues={"a-bin": "binance", "a-w": "evm:ethereum"})
    b = book("b", [bal("b-bin", "USDC", "100000"), bal("b-dydx", "USDC", "400000")],
             venues={"b-bin": "binance", "b-dydx": "dydx"})
    params = replace(PARAMS, max_venue_share={"binance": D("0.70"), "*": D("0.80")})
    va, vb = valuate(a, PRICES, params, T0), valuate(b, PRICES, params, T0)
    (fa,) = venue_findings(va, params)  # 80 % of a's collateral on binance > 70 %
    assert fa.code == FindingCode.VENUE_CONCENTRATION and fa.venue == "binance" and fa.details["share"] == "0.8"
    assert venue_findings(vb, params) == []  # 80 % on dydx is not above the 80 % default
    exposure = book_exposure([va, vb])
    assert exposure.total == D(1_500_000) and exposure.by_venue["binance"] == D(900_000)
    assert exposure.shares["binance"] == D("0.6")
    (fb,) = book_venue_findings(exposure, {"binance": D("0.50"), "*": D("0.60")})
    assert fb.subject == "book:binance" and fb.details["scope"] == "book"
    assert exposure.to_json_dict()["venues"]["dydx"] == {"usd": "400000", "share": str(D(400_000) / D(1_500_000))}
