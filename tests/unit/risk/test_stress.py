"""Stress scenarios (exact) and the float grid, with hand-computed outcomes."""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import Decimal as D  # noqa: N817

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from primeguard.domain.model import VenueKind
from primeguard.risk.ladder import LadderState, initial, step
from primeguard.risk.params import ALT, MAJOR, STABLE, LiquidityClass
from primeguard.risk.portfolio import revalue_book
from primeguard.risk.stress import (
    StressScenario,
    default_scenarios,
    grid_inputs,
    liquidation_cost,
    stress,
    stress_grid,
)
from primeguard.risk.valuation import valuate
from tests.unit.risk.helpers import BANDS, PARAMS, PRICES, T0, bal, book, book_prices, perp

LEVERED = book("lev", [bal("bn-fut", "USDC", "1000000")],
               [perp("bn-fut", "BTC", "50", "60000", VenueKind.BINANCE)], loan="500000", venues={"bn-fut": "binance"})


def test_three_x_levered_client_under_minus_thirty_percent():
    r = stress(LEVERED, PRICES, PARAMS, T0, StressScenario("-30%", {"*": D("-0.30")}))
    # PnL = 50 × (42,000 − 60,000) = −900,000 → equity 100,000 = haircut collateral → LTV 5
    assert r.equity == D(100_000) and r.haircut_collateral == D(100_000) and r.ltv == D(5)
    # closing 50 BTC = 2,100,000 on one venue (major: ½ spread 0.05 %, 1 % depth 10M):
    # slippage = 0.0005 + 0.005 × 2.1M / 10M = 0.00155 → cost 3,255
    assert r.liquidation_cost == D(3255)
    assert r.recovery == D(96_745) and r.shortfall == D(403_255)
    assert r.ltv_after_liquidation == D(500_000) / D(96_745)
    assert step(initial(T0), r.ltv, T0, BANDS).state == LadderState.LIQUIDATE


def test_funding_spike_charges_gross_notional():
    r = stress(LEVERED, PRICES, PARAMS, T0, StressScenario("funding", funding_spike=D("0.01")))
    assert r.haircut_collateral == D(970_000) and r.ltv == D(50) / D(97)  # 1 % of 3,000,000
    assert r.liquidation_cost == D(6000)  # 3M × (0.0005 + 0.005 × 0.3)


def test_venue_going_dark_counts_its_collateral_at_zero():
    b = book("v", [bal("okx-1", "USDC", "100"), bal("bybit-1", "USDC", "100"), bal("w", "USDC", "100")], loan="100",
             venues={"okx-1": "okx", "bybit-1": "bybit", "w": "evm:ethereum"})
    assert stress(b, PRICES, PARAMS, T0, StressScenario("okx dark", venue_dark="okx")).ltv == D("0.5")
    assert stress(b, PRICES, PARAMS, T0, StressScenario("evm dark", venue_dark="evm")).ltv == D("0.5")
    arb = book("arb", [bal("bn", "BTC", "10"), bal("dx", "USDC", "300000")], [perp("dx", "BTC", "-10", "60000")],
               loan="400000", venues={"bn": "binance", "dx": "dydx"})
    # dYdX dark: the hedge and its margin are gone, the spot leg is left: 600,000 × 0.9
    assert stress(arb, PRICES, PARAMS, T0, StressScenario("dydx dark", venue_dark="dydx")).ltv == \
        D(400_000) / D(540_000)


def test_idiosyncratic_shock_reports_the_worst_single_asset():
    b = book("i", [bal("w", "BTC", "1"), bal("w", "ETH", "20"), bal("w", "USDC", "1000")], loan="50000")
    r = stress(b, PRICES, PARAMS, T0, StressScenario("single -50%", idiosyncratic=D("-0.5")))
    # BTC alone: 27,000 + 51,000 + 1,000 = 79,000; ETH alone: 54,000 + 25,500 + 1,000 = 80,500
    assert r.worst_asset == "BTC" and r.ltv == D(50_000) / D(79_000)
    only_cash = stress(book("c", [bal("w", "USDC", "10")], loan="5"), PRICES, PARAMS, T0,
                       StressScenario("single -50%", idiosyncratic=D("-0.5")))
    assert only_cash.worst_asset is None and only_cash.ltv == D("0.5")


def test_correlated_shock_leaves_stablecoins_alone_unless_named():
    b = book("s", [bal("w", "USDC", "1000"), bal("w", "ETH", "1")], loan="1000")
    assert stress(b, PRICES, PARAMS, T0, StressScenario("all", {"*": D("-0.5")})).haircut_collateral == \
        D(1000) + D(1500) * D("0.85")
    depeg = stress(b, PRICES, PARAMS, T0, StressScenario("depeg", {"USDC": D("-0.1")}))
    assert depeg.haircut_collateral == D(900) + D(3000) * D("0.85")
    assert depeg.loan == D(900)  # a USDC loan is worth less too: the same price moves both


def test_liquidation_cost_per_asset_class():
    params = replace(PARAMS, low_liquidity_assets=frozenset({"PEPE"}))
    assert params.asset_class("PEPE") == ALT and params.asset_class("USDT") == STABLE
    assert params.asset_class("BTC") == MAJOR and params.asset_class("NEW") == ALT
    prices = book_prices(PEPE="0.001", USDT="1")
    b = book("p", [bal("w", "PEPE", "100000000"), bal("w", "USDT", "1000000")], loan="10", venues={"w": "evm"})
    # PEPE 100,000 at 0.2 % + 0.5 % × 100k/250k = 0.4 % → 400; USDT 1M at 0.01 % + 0.5 % × 1M/50M = 0.02 % → 200
    assert liquidation_cost(b, prices, params) == D(400) + D(200)
    assert LiquidityClass(D("0.002"), D("250000")).slippage(D(10) ** 9) == D("0.5")  # capped


def test_default_scenarios():
    names = [s.name for s in default_scenarios({"binance", "dydx"})]
    assert names[:4] == ["all risk assets -10%", "all risk assets -20%", "all risk assets -30%",
                         "all risk assets -50%"]
    assert "worst single asset -50%" in names and names[-2:] == ["binance goes dark", "dydx goes dark"]
    assert all(r.to_json_dict()["scenario"] for r in (stress(LEVERED, PRICES, PARAMS, T0, s)
                                                        for s in default_scenarios({"binance"})))


GRID = [StressScenario("0", {}), StressScenario("-30", {"*": D("-0.3")}), StressScenario("-50", {"*": D("-0.5")}),
        StressScenario("+20", {"*": D("0.2")}), StressScenario("funding", funding_spike=D("0.01")),
        StressScenario("eth -40", {"ETH": D("-0.4")}), StressScenario("dark", venue_dark="binance")]

sizes = st.decimals(min_value=-20, max_value=20, places=2)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["BTC", "ETH"]), st.sampled_from(["bn", "dx"]), sizes,
                          st.integers(min_value=1000, max_value=80000)), max_size=6),
       st.decimals(min_value=0, max_value=50, places=1), st.integers(min_value=0, max_value=2_000_000))
def test_property_grid_matches_the_exact_path(legs, eth, usdc):
    positions = [perp(acct, u, str(size), str(entry if u == "BTC" else entry // 20)) for u, acct, size, entry in legs]
    b = book("g", [bal("bn", "USDC", str(usdc)), bal("dx", "ETH", str(eth))], positions, loan="100000",
             venues={"bn": "binance", "dx": "dydx"})
    [val] = revalue_book([b], PRICES, PARAMS, T0)
    grid = stress_grid(grid_inputs([val], dark_venues=["binance"]), GRID, PARAMS)
    for sc, row in zip(GRID, grid, strict=True):
        exact = stress(b, PRICES, PARAMS, T0, sc).ltv
        assert exact is not None
        assert (math.isinf(row[0]) and not exact.is_finite()) or row[0] == pytest.approx(float(exact), rel=1e-9)


def test_grid_refuses_what_it_cannot_do():
    inputs = grid_inputs(revalue_book([LEVERED], PRICES, PARAMS, T0))
    with pytest.raises(ValueError, match="exact-path"):
        stress_grid(inputs, [StressScenario("i", idiosyncratic=D("-0.5"))], PARAMS)
    with pytest.raises(ValueError, match="dark_venues"):
        stress_grid(inputs, [StressScenario("d", venue_dark="okx")], PARAMS)
    with pytest.raises(ValueError, match="funding spike"):
        stress_grid(inputs, [StressScenario("f", {"BTC": D("-0.1")}, funding_spike=D("0.01"))], PARAMS)
    with pytest.raises(ValueError, match="one price context"):
        grid_inputs(revalue_book([LEVERED], PRICES, PARAMS, T0) + revalue_book([LEVERED], PRICES, PARAMS, T0))


@settings(max_examples=80, deadline=None)
@given(st.decimals(min_value=D("0.01"), max_value=D("0.99"), places=2),
       st.decimals(min_value=0, max_value=100, places=3), st.decimals(min_value=0, max_value=5, places=4),
       st.integers(min_value=0, max_value=100_000))
def test_property_ltv_monotone_in_a_price_drop(drop, eth, btc, usdc):
    b = book("m", [bal("w", "ETH", str(eth)), bal("w", "BTC", str(btc)), bal("w", "USDC", str(usdc))], loan="10000")
    before = valuate(b, PRICES, PARAMS, T0).ltv
    small = stress(b, PRICES, PARAMS, T0, StressScenario("d", {"*": -drop / 2})).ltv
    after = stress(b, PRICES, PARAMS, T0, StressScenario("d", {"*": -drop})).ltv
    assert before is not None and small is not None and after is not None
    assert before <= small <= after
