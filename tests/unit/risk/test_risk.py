"""Risk maths with hand-computed numbers: financing tiers, a delta-neutral funding-rate arbitrage,
a 3x levered client under a -30% shock, the ladder with hysteresis and cooldown, price deviation and
staleness, Decimal exactness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D  # noqa: N817 - short for readable worked examples

import pytest
from hypothesis import given
from hypothesis import strategies as st

from primeguard.domain.findings import FindingCode
from primeguard.domain.model import Balance, Client, Loan, Position, PriceQuote, PriceSourceKind, VenueKind
from primeguard.risk.interest import accrued_interest
from primeguard.risk.ladder import LadderState, initial, step
from primeguard.risk.params import LadderBands, RiskParameters
from primeguard.risk.pricing import select_prices
from primeguard.risk.stress import StressScenario, aggregate, exposure_ltv, stress, stress_grid
from primeguard.risk.valuation import INFINITE, ClientBook, valuate

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BANDS = LadderBands(warn=D("0.5"), margin_call=D("0.6"), halt=D("0.7"), liquidate=D("0.8"),
                    hysteresis=D("0.02"), cooldown_s=300, margin_call_deadline_s=4 * 3600)
PARAMS = RiskParameters(ladder=BANDS, haircuts={"USDC": D(0), "USDT": D(0), "BTC": D("0.1"), "ETH": D("0.1")})


def q(asset, price, source=PriceSourceKind.ORACLE, age=0, sid=None):
    return PriceQuote(asset, D(price), source, sid or f"{source.value}:{asset}", T0 - timedelta(seconds=age), T0)


PRICES = select_prices([q("BTC", "60000"), q("ETH", "3000"), q("USDC", "1"), q("USDT", "1")], T0, PARAMS)


def bal(acct, asset, qty):
    return Balance(acct, asset, D(qty), T0, "test")


def perp(acct, underlying, size, entry, venue=VenueKind.DYDX, liq=None):
    return Position(acct, venue, f"{underlying}-USD", underlying, D(size), D(entry), D(entry), T0, "test",
                    liquidation_price=None if liq is None else D(liq))


def book(cid, balances, positions=(), loan=None, venues=None, blind=()):
    return ClientBook(Client(cid, cid), None if loan is None else Loan(cid, D(loan), "USDC", D(0), T0),
                      tuple(balances), tuple(positions), tuple(blind), venues or {})


@pytest.mark.parametrize(("loan", "assets", "ltv"), [
    ("1000000", "2000000", D("0.5")),  # 1:1 financing: client 1M + loan 1M in the account
    ("2000000", "3000000", D(2) / D(3)),  # 1:2
    ("9000000", "10000000", D("0.9")),  # 10x after a track record
])
def test_firm_a_financing_tiers(loan, assets, ltv):
    v = valuate(book("firm-a", [bal("bn", "USDC", assets)], loan=loan), PRICES, PARAMS, T0)
    assert v.ltv == ltv
    assert v.coverage == 1 / ltv
    assert v.equity == D(assets) and v.net_delta == {}


def test_delta_neutral_funding_rate_arbitrage_across_binance_and_dydx():
    b = book("arb", [bal("bn-spot", "BTC", "10"), bal("dydx-0", "USDC", "300000")],
             [perp("dydx-0", "BTC", "-10", "60000", liq="75000")], loan="400000",
             venues={"bn-spot": "binance", "dydx-0": "dydx"})
    v = valuate(b, PRICES, PARAMS, T0)
    assert v.net_delta == {"BTC": D(0)}
    assert v.net_delta_ratio == 0
    assert v.equity == D("900000")
    # BTC haircut 10 %: 600000 * 0.9 + 300000 = 840000
    assert v.haircut_collateral == D("840000")
    assert v.ltv == D("400000") / D("840000")
    assert v.positions[0].liquidation_distance == D("0.25")
    # -20 %: the spot leg loses 120k, the short gains 120k: equity unchanged
    crash = select_prices([q("BTC", "48000"), q("USDC", "1")], T0, PARAMS)
    assert valuate(b, crash, PARAMS, T0).equity == D("900000")


def test_three_x_levered_long_under_minus_thirty_percent():
    b = book("lev", [bal("bn-fut", "USDC", "1000000")], [perp("bn-fut", "BTC", "50", "60000", VenueKind.BINANCE)],
             loan="500000", venues={"bn-fut": "binance"})
    v = valuate(b, PRICES, PARAMS, T0)
    assert v.leverage == 3
    r = stress(b, PRICES, PARAMS, T0, StressScenario("-30%", {"*": D("-0.30")}))
    # PnL = 50 * (42000 - 60000) = -900000 → collateral 100000, LTV 5
    assert r.equity == D("100000")
    assert r.ltv == D(5)
    assert r.liquidation_cost == D(50) * 42000 * D("0.005")
    assert step(initial(T0), r.ltv, T0, BANDS).state == LadderState.LIQUIDATE


def test_venue_going_dark_counts_its_collateral_at_zero():
    b = book("v", [bal("okx-1", "USDC", "100"), bal("bybit-1", "USDC", "100")], loan="100",
             venues={"okx-1": "okx", "bybit-1": "bybit"})
    assert stress(b, PRICES, PARAMS, T0, StressScenario("okx dark", venue_dark="okx")).ltv == 1


def test_zero_collateral_with_a_loan_is_infinite_not_an_error():
    v = valuate(book("z", [], loan="1"), PRICES, PARAMS, T0)
    assert v.ltv == INFINITE and v.to_json()["ltv"] == "inf"


def test_ladder_up_immediately_down_after_cooldown_with_hysteresis():
    s = step(initial(T0), D("0.55"), T0, BANDS)
    assert s.state == LadderState.WARN
    s = step(s, D("0.65"), T0 + timedelta(seconds=10), BANDS)
    assert s.state == LadderState.MARGIN_CALL and s.deadline == T0 + timedelta(seconds=10, hours=4)
    s = step(s, D("0.59"), T0 + timedelta(seconds=20), BANDS)  # inside the hysteresis band
    assert s.state == LadderState.MARGIN_CALL and s.below_since is None
    s = step(s, D("0.57"), T0 + timedelta(seconds=30), BANDS)
    assert s.below_since == T0 + timedelta(seconds=30)
    s = step(s, D("0.57"), T0 + timedelta(seconds=200), BANDS)
    assert s.state == LadderState.MARGIN_CALL
    bounce = step(s, D("0.59"), T0 + timedelta(seconds=250), BANDS)  # interruption restarts the clock
    assert bounce.below_since is None and bounce.state == LadderState.MARGIN_CALL
    s = step(s, D("0.57"), T0 + timedelta(seconds=330), BANDS)
    assert s.state == LadderState.WARN


def test_margin_call_not_cured_by_deadline_escalates_to_halt():
    s = step(initial(T0), D("0.62"), T0, BANDS)
    s = step(s, D("0.62"), T0 + timedelta(hours=4, seconds=1), BANDS)
    assert s.state == LadderState.HALT


def test_blind_client_never_moves_down():
    s = step(initial(T0), D("0.75"), T0, BANDS)
    for k in range(1, 10):
        s = step(s, D("0.1"), T0 + timedelta(seconds=400 * k), BANDS, blind=True)
    assert s.state == LadderState.HALT
    assert step(s, None, T0 + timedelta(hours=9), BANDS).state == LadderState.HALT


def test_price_deviation_uses_conservative_prices():
    book_ = select_prices([q("ETH", "3000"), q("ETH", "3100", PriceSourceKind.VENUE_MARK)], T0, PARAMS)
    assert book_.collateral("ETH") == D(3000) and book_.liability("ETH") == D(3100)
    assert [f.code for f in book_.findings] == [FindingCode.PRICE_DEVIATION]
    within = select_prices([q("ETH", "3000"), q("ETH", "3030", PriceSourceKind.VENUE_MARK)], T0, PARAMS)
    assert within.collateral("ETH") == within.liability("ETH") == D(3000) and not within.findings


def test_stale_source_ignored_and_missing_price_makes_client_blind():
    prices = select_prices([q("ETH", "3000", PriceSourceKind.VENUE_MARK, age=7200)], T0, PARAMS, wanted=["ETH"])
    assert "ETH" in prices.missing
    assert {f.code for f in prices.findings} == {FindingCode.DATA_STALE, FindingCode.PRICE_MISSING}
    v = valuate(book("s", [bal("w", "ETH", "1")], loan="10"), prices, PARAMS, T0)
    assert v.blind and FindingCode.PRICE_MISSING in {f.code for f in v.findings}


def test_decimal_exactness_and_interest():
    v = valuate(book("d", [bal("a", "USDC", "0.1"), bal("b", "USDC", "0.2")]), PRICES, PARAMS, T0)
    assert v.gross_collateral == D("0.3") and isinstance(v.gross_collateral, D)
    loan = Loan("x", D("1000000"), "USDC", D("0.0730"), T0)
    assert accrued_interest(loan, T0 + timedelta(days=1)) == D("200")  # 1M * 7.3 % / 365


def test_aggregate_path_equals_full_valuation():
    b = book("agg", [bal("x", "USDC", "1000"), bal("x", "ETH", "2")],
             [perp("x", "ETH", "-3", "2900"), perp("x", "ETH", "1", "3100"), perp("x", "BTC", "0.5", "58000")],
             loan="2000")
    e = aggregate("agg", D(2000), [(x.asset, x.quantity) for x in b.balances],
                  [(p.underlying, p.size, p.entry_price) for p in b.positions])
    low = {a: p.collateral for a, p in PRICES.picks.items()}
    high = {a: p.liability for a, p in PRICES.picks.items()}
    assert exposure_ltv(e, low, high, PARAMS.haircuts, PARAMS.default_haircut) == valuate(b, PRICES, PARAMS, T0).ltv
    grid = stress_grid([e], {k: float(v) for k, v in low.items()}, {k: float(v) for k, v in high.items()},
                       {k: float(v) for k, v in PARAMS.haircuts.items()}, 0.5, [0.0, -0.3])
    assert grid[0][0] == pytest.approx(float(valuate(b, PRICES, PARAMS, T0).ltv))


@given(st.decimals(min_value=D("0.01"), max_value=D("0.99"), places=2))
def test_ltv_monotone_in_price_drop(drop):
    b = book("m", [bal("w", "ETH", "10"), bal("w", "USDC", "1000")], loan="10000")
    before = valuate(b, PRICES, PARAMS, T0).ltv
    after = stress(b, PRICES, PARAMS, T0, StressScenario("drop", {"*": -drop})).ltv
    assert after is not None and before is not None and after >= before
