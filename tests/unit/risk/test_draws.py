"""New loan draws are guarded: a draw that would take loan ÷ own collateral past the tier's
financing cap, or the LTV past the tier's limit, is refused with a reason code; unknown denies."""

from __future__ import annotations

from decimal import Decimal as D  # noqa: N817

from primeguard.domain.decision import Outcome, ReasonCode
from primeguard.policy.engine import evaluate_draw
from primeguard.policy.inputs import DrawContext, DrawRequest
from primeguard.policy.loader import load
from primeguard.risk.limits import after_draw
from primeguard.risk.valuation import valuate
from tests.unit.policy.helpers import POLICIES
from tests.unit.risk.helpers import T0, bal, book, book_prices

POLICY = load(POLICIES)


def _decide(client: str, tier: str, balances, loan: str, amount: str, prices, state: str = "normal"):
    params = POLICY.risk_parameters(tier)
    val = valuate(book(client, balances, loan=loan, venues={"w": "evm:ethereum", "b": "binance"}), prices, params, T0,
                  tier=tier)
    after = after_draw(val, D(amount), T0)
    assert after is not None
    ctx = DrawContext(ltv=val.ltv, post_ltv=after.ltv, post_loan_to_collateral=after.loan_to_collateral,
                      post_stress_shortfall=after.stress_shortfall, ladder_state=state)
    return after, evaluate_draw(POLICY, DrawRequest("d1", client, D(amount), "tom", T0), ctx)


def test_firm_a_new_tier_draws_up_to_1_to_1_and_not_a_cent_more() -> None:
    # gamma (tier new, 1:1, no stressed shortfall allowed): 100,000 own + a 50,000 loan in USDC, 50k in a
    # wallet and 100k on Binance; the draw lands in the wallet, so either venue dark still covers the loan.
    prices = book_prices(USDC="1")
    books = [bal("w", "USDC", "50000"), bal("b", "USDC", "100000")]
    after, ev = _decide("gamma", "new", books, "50000", "50000", prices)
    assert after.loan_to_collateral == 1 and after.ltv == D("0.5") and after.stress_shortfall == 0  # 100k / 200k
    assert ev.decision.outcome is Outcome.ALLOW, ev.decision.explanation
    after, ev = _decide("gamma", "new", books, "50000", "50000.01", prices)
    assert after.loan_to_collateral > 1
    assert ev.decision.outcome is Outcome.DENY
    assert ev.decision.reasons[0] == ReasonCode.FINANCING_CAP
    assert ev.decision.rule_ids[0] == "financing-cap-holds"
    assert "above tier new's financing cap 1:1" in ev.decision.explanation
    assert ev.findings and ev.findings[0].client_id == "gamma"


def test_a_draw_past_the_ltv_limit_is_refused_within_the_financing_cap() -> None:
    # beta (standard, 2:1, LTV limit = warn 0.75): 300,000 of PEPE (haircut 50 %) own; a 500,000 draw
    # keeps loan / own at 5/3 but takes LTV to 500k / (150k + 500k) ≈ 0.769.
    prices = book_prices(USDC="1", PEPE="1")
    after, ev = _decide("beta", "standard", [bal("w", "PEPE", "300000"), bal("w", "USDC", "1")], "1", "499999",
                        prices)
    assert after.ltv == D(500_000) / D(650_000)
    assert ev.decision.outcome is Outcome.DENY
    assert ReasonCode.LTV_IMPACT in ev.decision.reasons and ReasonCode.FINANCING_CAP not in ev.decision.reasons


def test_unknown_blind_or_stressed_denies() -> None:
    req = DrawRequest("d2", "gamma", D(1000), "tom", T0)
    ok = DrawContext(ltv=D("0.3"), post_ltv=D("0.31"), post_loan_to_collateral=D("0.5"), post_stress_shortfall=D(0),
                     ladder_state="normal")
    assert evaluate_draw(POLICY, req, ok).decision.outcome is Outcome.ALLOW
    cases = {
        ReasonCode.BLIND_SPOT: DrawContext(ladder_state="normal", ltv=D("0.3"), post_ltv=D("0.31")),
        ReasonCode.LADDER_STATE: DrawContext(**{**_fields(ok), "ladder_state": "margin_call"}),
        ReasonCode.STRESS_LIMIT: DrawContext(**{**_fields(ok), "post_stress_shortfall": D("0.01")}),
    }
    for reason, ctx in cases.items():
        d = evaluate_draw(POLICY, req, ctx).decision
        assert d.outcome is Outcome.DENY and reason in d.reasons, (reason, d.explanation)
    blind = DrawContext(**{**_fields(ok), "client_blind": True, "blind_reasons": ("binance: unreachable",)})
    d = evaluate_draw(POLICY, req, blind).decision
    assert d.reasons == (ReasonCode.BLIND_SPOT,) and "binance: unreachable" in d.explanation
    for bad in (D(0), D(-5), D("NaN")):
        d = evaluate_draw(POLICY, DrawRequest("d3", "gamma", bad, "tom", T0), ok).decision
        assert d.reasons == (ReasonCode.AMOUNT_INVALID,)


def _fields(ctx: DrawContext) -> dict:
    return {f: getattr(ctx, f) for f in DrawContext.__dataclass_fields__}
