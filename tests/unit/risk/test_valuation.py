"""Valuation worked examples, every number computed by hand in the comments."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from decimal import Decimal as D  # noqa: N817

import pytest

from primeguard.domain.findings import FindingCode
from primeguard.domain.model import VenueKind
from primeguard.risk.params import RiskParameters
from primeguard.risk.pricing import select_prices
from primeguard.risk.valuation import INFINITE, ClientValuation, valuate
from tests.unit.risk.helpers import BANDS, PARAMS, PRICES, T0, bal, book, perp, q


def codes(v: ClientValuation) -> set[FindingCode]:
    return {f.code for f in v.findings}


@pytest.mark.parametrize(("loan", "assets", "ltv"), [
    ("1000000", "2000000", D("0.5")),  # 1:1 financing (2x): client 1M + loan 1M in the account
    ("2000000", "3000000", D(2) / D(3)),  # 1:2 (3x): loan 2M on 1M of the client's own
    ("9000000", "10000000", D("0.9")),  # 10x after a track record
])
def test_firm_a_financing_tiers(loan, assets, ltv):
    v = valuate(book("firm-a", [bal("bn", "USDC", assets)], loan=loan), PRICES, PARAMS, T0)
    assert v.ltv == ltv
    assert v.coverage == D(assets) / D(loan)
    assert v.equity == D(assets) and v.net_equity == D(assets) - D(loan)
    assert v.net_delta == {} and v.leverage == 0


def test_firm_a_one_to_one_thirty_days_into_a_basis_trade():
    # Firm A deposits 1M USDC, the PB lends 1M at 8 %. Firm A buys 10 BTC spot on Binance and
    # shorts 10 BTC-USD on dYdX at 60,000; 30 days later at the same price:
    b = book("firm-a", [bal("bn-spot", "BTC", "10"), bal("bn-spot", "USDC", "400000"),
                        bal("dydx-0", "USDC", "1000000")],
             [perp("dydx-0", "BTC", "-10", "60000", liq="90000")], loan="1000000", rate="0.08",
             start=T0 - timedelta(days=30), venues={"bn-spot": "binance", "dydx-0": "dydx"})
    v = valuate(b, PRICES, PARAMS, T0)
    # interest = 1,000,000 × 8 % × 30/365 = 6,575.342465753424657534… (ACT/365, exact to 80 digits)
    interest = D(1_000_000) * (D("0.08") * (D(30 * 86400) / D(365 * 86400)))
    assert v.accrued_interest == interest and str(interest).startswith("6575.342465753424657534")
    # equity = 10 × 60,000 + 400,000 + 1,000,000 + PnL 0 = 2,000,000
    assert v.equity == D(2_000_000) and v.unrealized_pnl == 0
    # haircut collateral = 600,000 × 0.9 + 400,000 + 1,000,000 = 1,940,000
    assert v.haircut_collateral == D(1_940_000)
    # LTV = 1,006,575.34… / 1,940,000 = 0.51885…: the interest alone crosses the 0.5 warn band
    assert v.loan == D(1_000_000) + interest
    assert v.ltv == (D(1_000_000) + interest) / D(1_940_000)
    assert round(v.ltv, 6) == D("0.518853")
    assert v.net_delta == {"BTC": D(0)} and v.net_delta_ratio == 0
    # gross exposure = 600,000 perp notional + 600,000 spot BTC; leverage = 1.2M / 2M
    assert v.gross_exposure == D(1_200_000) and v.leverage == D("0.6")
    assert dict(v.by_venue) == {"binance": D(1_000_000), "dydx": D(1_000_000)}
    [pos] = v.positions
    assert pos.liquidation_distance == D("0.5") and pos.venue == "dydx"  # (90,000 − 60,000) / 60,000


def test_delta_neutral_funding_arbitrage_binance_spot_against_dydx_perp():
    b = book("arb", [bal("bn-spot", "BTC", "10"), bal("dydx-0", "USDC", "300000")],
             [perp("dydx-0", "BTC", "-10", "60000", liq="75000")], loan="400000",
             venues={"bn-spot": "binance", "dydx-0": "dydx"})
    v = valuate(b, PRICES, PARAMS, T0)
    assert v.net_delta == {"BTC": D(0)} and v.net_delta_qty == {"BTC": D(0)}
    assert v.equity == D(900_000)
    assert v.haircut_collateral == D(840_000)  # 600,000 × 0.9 + 300,000
    assert v.ltv == D(10) / D(21)  # 400,000 / 840,000
    assert v.positions[0].liquidation_distance == D("0.25")  # (75,000 − 60,000) / 60,000
    # −20 %: spot 480,000 × 0.9 = 432,000; short PnL +120,000, haircut like BTC: 108,000;
    # 432,000 + 300,000 + 108,000 = 840,000: the hedge holds the LTV still.
    crash = valuate(b, select_prices([q("BTC", "48000"), q("USDC", "1")], T0, PARAMS), PARAMS, T0)
    assert crash.equity == D(900_000) and crash.ltv == D(10) / D(21)
    # +20 %: spot 720,000 × 0.9 = 648,000; short PnL −120,000 in full: 828,000
    rally = valuate(b, select_prices([q("BTC", "72000"), q("USDC", "1")], T0, PARAMS), PARAMS, T0)
    assert rally.haircut_collateral == D(828_000) and rally.ltv == D(400_000) / D(828_000)


def test_hedged_perps_across_two_venues_net_per_underlying():
    # Long 10 BTC on Binance at 55,000, short 10 on OKX at 65,000: net 0, PnL = −(10×55k − 10×65k)
    b = book("x", [bal("bn", "USDC", "100000")], [perp("bn", "BTC", "10", "55000", VenueKind.BINANCE),
                                                   perp("okx", "BTC", "-10", "65000", VenueKind.OKX)])
    v = valuate(b, PRICES, PARAMS, T0)
    assert v.unrealized_pnl == D(100_000) and v.haircut_collateral == D(100_000) + D(100_000) * D("0.9")
    assert dict(v.by_venue) == {"unknown": D(100_000), "binance": D(50_000), "okx": D(50_000)}
    assert dict(v.by_venue_haircut) == {"unknown": D(100_000), "binance": D(45_000), "okx": D(45_000)}
    assert v.gross_notional == D(1_200_000) and v.leverage == D(1_200_000) / D(200_000)


def test_three_x_levered_long():
    b = book("lev", [bal("bn-fut", "USDC", "1000000")], [perp("bn-fut", "BTC", "50", "60000", VenueKind.BINANCE)],
             loan="500000")
    v = valuate(b, PRICES, PARAMS, T0)
    assert v.leverage == 3 and v.ltv == D("0.5")  # 3,000,000 notional on 1,000,000 equity
    assert v.net_delta == {"BTC": D(3_000_000)} and v.net_delta_ratio == 3


def test_conservative_prices_when_sources_disagree():
    prices = select_prices([q("ETH", "3000"), q("ETH", "3100", sid="mark:ETH"), q("USDC", "1")], T0, PARAMS)
    long_ = valuate(book("l", [bal("w", "ETH", "10")]), prices, PARAMS, T0)
    assert long_.gross_collateral == D(30_000)  # holdings at the low price
    short = valuate(book("s", [bal("w", "USDC", "10000")], [perp("w", "ETH", "-1", "3000")]), prices, PARAMS, T0)
    assert short.unrealized_pnl == D(-100)  # the short at the high price: −1 × (3,100 − 3,000)
    assert FindingCode.PRICE_DEVIATION in codes(short)  # the book-wide finding, shared with the client
    btc_loan = valuate(book("b", [bal("w", "USDC", "100000")], loan="1", loan_asset="BTC"),
                       select_prices([q("BTC", "60000"), q("BTC", "62000", sid="m"), q("USDC", "1")], T0, PARAMS),
                       PARAMS, T0)
    assert btc_loan.loan == D(62_000) and btc_loan.ltv == D("0.62")  # a BTC loan owed at the high price
    borrowed = valuate(book("n", [bal("w", "USDC", "100000"), bal("w", "ETH", "-2")]), prices, PARAMS, T0)
    assert borrowed.haircut_collateral == D(100_000) - D(6_200)  # a negative balance: high price, no haircut


def test_zero_collateral_with_a_loan_is_infinite_not_an_error():
    v = valuate(book("z", [], loan="1"), PRICES, PARAMS, T0)
    assert v.ltv == INFINITE and v.coverage == 0
    assert v.to_json_dict()["metrics"]["ltv"] == "inf"
    gone = valuate(book("g", [bal("w", "USDC", "100")], [perp("w", "BTC", "1", "70000")], loan="1"),
                   PRICES, PARAMS, T0)
    assert gone.equity == D(-9_900) and gone.ltv == INFINITE and gone.leverage == INFINITE


def test_no_loan_means_ltv_zero_and_no_coverage():
    v = valuate(book("n", [bal("w", "USDC", "5")]), PRICES, PARAMS, T0)
    assert v.ltv == 0 and v.coverage is None and v.loan == 0


def test_blind_account_and_missing_price_make_the_client_blind():
    v = valuate(book("b", [bal("w", "USDC", "100")], loan="10", blind=["okx-1"], venues={"okx-1": "okx"}),
                PRICES, PARAMS, T0)
    assert v.blind and v.blind_accounts == ("okx-1",)
    [f] = [f for f in v.findings if f.code == FindingCode.BLIND_SPOT]
    assert f.subject == "okx-1" and f.venue == "okx" and f.client_id == "b"
    stale = select_prices([q("SOL", "150", age=7200)], T0, PARAMS)
    w = valuate(book("s", [bal("w", "SOL", "1"), bal("w", "USDC", "100")], loan="10"), stale, PARAMS, T0)
    assert w.blind and w.unpriced == ("SOL", "USDC")
    assert w.gross_collateral == 0  # what cannot be priced is left out, never counted at zero silently
    assert FindingCode.PRICE_MISSING in codes(w)


def test_decimal_exactness_no_float_anywhere():
    v = valuate(book("d", [bal("a", "USDC", "0.1"), bal("b", "USDC", "0.2")], [perp("a", "ETH", "0.1", "2999.9")],
                     loan="0.1"), PRICES, PARAMS, T0)
    assert v.gross_collateral == D("0.3")  # 0.1 + 0.2, exactly
    assert v.unrealized_pnl == D("0.01")
    for f in dataclasses.fields(ClientValuation):
        value = getattr(v, f.name)
        assert not isinstance(value, float), f.name
        if f.name in {"gross_collateral", "haircut_collateral", "equity", "loan", "ltv", "coverage",
                      "leverage", "net_delta_ratio", "gross_exposure", "net_equity"}:
            assert type(value) is D, f.name
    assert all(type(x) is D for x in v.net_delta.values())


def test_limits_produce_findings():
    params = dataclasses.replace(PARAMS, max_leverage=D(2), max_net_delta_ratio=D("0.5"), max_drawdown=D("0.1"),
                                 max_concentration=D("0.5"), low_liquidity_assets=frozenset({"ETH"}),
                                 max_low_liquidity_share=D("0.2"))
    b = book("lim", [bal("w", "ETH", "100"), bal("w", "USDC", "100000")], [perp("w", "BTC", "10", "60000")],
             peak="1000000")
    v = valuate(b, PRICES, params, T0)
    # equity 400,000; exposure 600,000 + 300,000 → leverage 2.25; delta 900,000 / 400,000 = 2.25
    assert v.leverage == D("2.25") and v.net_delta_ratio == D("2.25")
    assert v.drawdown == D("0.6")  # 1 − 400,000 / 1,000,000
    assert v.concentration == D("0.75") and v.concentration_asset == "ETH"  # 300,000 / 400,000 collateral
    assert v.low_liquidity_share == D("0.75")
    assert {FindingCode.LEVERAGE_EXCEEDED, FindingCode.NET_DELTA_EXCEEDED, FindingCode.DRAWDOWN_EXCEEDED,
            FindingCode.CONCENTRATION_EXCEEDED, FindingCode.LOW_LIQUIDITY_EXPOSURE} <= codes(v)


def test_near_liquidation_is_found_per_position():
    b = book("n", [bal("bn", "USDC", "100000")],
             [perp("bn", "BTC", "1", "60000", VenueKind.BINANCE, liq="55000"),  # 8.33 % away: near
              perp("bn", "BTC", "1", "60000", VenueKind.BINANCE, liq="50000"),  # 16.7 %: fine
              perp("dx", "ETH", "-1", "3000", liq="3200")],  # 6.67 % for a short: near
             venues={"bn": "binance"})
    v = valuate(b, PRICES, PARAMS, T0)
    near = sorted(f.subject for f in v.findings if f.code == FindingCode.NEAR_LIQUIDATION)
    assert near == ["bn:BTC-USD", "dx:ETH-USD"]
    assert v.min_liquidation_distance == D(200) / D(3000)


def test_json_shape_carries_metrics_prices_and_freshness():
    prices = select_prices([q("BTC", "60000", age=12), q("USDC", "1")], T0, PARAMS)
    v = valuate(book("j", [bal("bn", "BTC", "1")], loan="30000", venues={"bn": "binance"}), prices, PARAMS, T0)
    doc = json.loads(json.dumps(v.to_json_dict()))
    assert set(doc) == {"client", "tier", "as_of", "blind", "blind_accounts", "unpriced", "gaps", "loan", "metrics",
                        "net_delta", "by_venue", "positions", "prices", "findings"}
    assert doc["metrics"]["ltv"] == str(D(30000) / D(54000)) and doc["loan"]["owed_usd"] == "30000"
    assert doc["prices"]["BTC"]["age_s"] == "12" and doc["prices"]["BTC"]["source"] == "oracle"
    assert doc["net_delta"] == {"BTC": {"qty": "1", "usd": "60000"}}
    assert doc["by_venue"] == {"binance": {"value": "60000", "haircut_value": "54000"}}


def test_fast_constructor_sets_every_field():
    v = valuate(book("f", [bal("w", "USDC", "1")]), PRICES, PARAMS, T0)
    assert {f.name for f in dataclasses.fields(ClientValuation)} <= set(vars(v))
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.ltv = D(0)  # type: ignore[misc]


def test_params_keep_working_without_the_new_fields():
    minimal = RiskParameters(ladder=BANDS)  # what a first-version policy builds
    v = valuate(book("m", [bal("w", "ETH", "1")], loan="1000"), PRICES, minimal, T0)
    assert v.haircut_collateral == D(1500) and v.ltv == D(1000) / D(1500)  # default haircut 0.5


def test_repriced_is_replace_without_the_derived_views():
    v = valuate(book("f", [bal("w", "USDC", "1")]), PRICES, PARAMS, T0)
    _ = v.positions, v.prices_used  # derived views computed on the original
    other = v.context
    got = v.repriced(other, D(7))
    assert got == dataclasses.replace(v, context=other, loan=D(7))
    assert got.context is other and got.loan == D(7)
    assert "positions" not in vars(got) and "prices_used" not in vars(got)
