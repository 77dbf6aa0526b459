"""The float screen of the stress scenarios: far from every threshold it stands in for the exact
path, near one it hands over, and it never classifies a client differently from the exact path."""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import Decimal as D  # noqa: N817

from hypothesis import given, settings
from hypothesis import strategies as st

from primeguard.risk.ladder import LadderState, LadderStatus, step
from primeguard.risk.limits import stress_findings
from primeguard.risk.portfolio import revalue_book
from primeguard.risk.stress import (
    SCREEN_TOLERANCE,
    _far,
    _thresholds,
    default_scenarios,
    screen_ltv,
    screen_stress,
    stress,
)
from primeguard.risk.valuation import ClientBook, ValuationContext, loan_due, valuate
from tests.unit.risk.helpers import PARAMS, PRICES, T0, at, bal, book, book_prices, perp

VENUES = {"w": "evm:ethereum", "bn": "binance", "dx": "dydx"}
LIMITED = replace(PARAMS, max_stress_shortfall=D(20_000))


def eth_book(cid: str, usdc: str, loan: str) -> ClientBook:
    """10 ETH on a wallet, USDC on Binance, a short ETH perp hedge on dYdX."""
    return book(cid, [bal("w", "ETH", "10"), bal("bn", "USDC", usdc)], [perp("dx", "ETH", "-2", "3100")],
                loan=loan, venues=VENUES)


def scenarios_of(*books: ClientBook) -> dict[str, list]:
    return {b.client.id: default_scenarios(set(b.account_venues.values())) for b in books}


def region(ltv: float, thresholds: list[float]) -> int:
    """How many thresholds the LTV is at or above (the ladder's view of it)."""
    return sum(ltv >= t for t in thresholds)


def test_a_client_far_from_every_threshold_is_screened_and_matches_the_exact_ltvs():
    b = eth_book("far", "3150", "12000")
    [val] = revalue_book([b], PRICES, LIMITED, T0)
    screened = screen_stress([val], scenarios_of(b), LIMITED)
    fast = screened["far"]
    exact = [stress(b, PRICES, LIMITED, T0, sc) for sc in scenarios_of(b)["far"]]
    assert fast.scenarios == tuple(r.scenario for r in exact)
    for x, r in zip(fast.ltv, exact, strict=True):
        assert r.ltv is not None
        assert (math.isinf(x) and not r.ltv.is_finite()) or math.isclose(x, float(r.ltv), rel_tol=1e-12)
    assert fast.worst_asset == tuple(r.worst_asset for r in exact)
    assert 0 < fast.tolerance_usd < 1  # 2^-30 of a ~100k USD book
    rows = fast.to_json()
    assert all(r["method"] == "float_screen" and "equity" not in r and "shortfall" not in r for r in rows)


def test_a_client_whose_stressed_ltv_sits_on_a_band_goes_to_the_exact_path():
    # -30 %: 10 ETH × 2,100 × 0.85 + 2,150 USDC + the hedge's PnL; the loan set so the LTV is exactly 0.6.
    probe = eth_book("near", "2150", "1")
    minus30 = next(sc for sc in scenarios_of(probe)["near"] if sc.name == "all risk assets -30%")
    coll = stress(probe, PRICES, PARAMS, T0, minus30).haircut_collateral
    b = eth_book("near", "2150", str(coll * D("0.6")))
    assert stress(b, PRICES, PARAMS, T0, minus30).ltv == D("0.6")
    [val] = revalue_book([b], PRICES, PARAMS, T0)
    assert screen_stress([val], scenarios_of(b), PARAMS) == {}
    # A hair away (well inside the margin) still goes exact; a dollar away is screened.
    for loan, screened in ((coll * D("0.6") + D("0.000001"), False), (coll * D("0.6") - D(1), True)):
        [val] = revalue_book([eth_book("near", "2150", str(loan))], PRICES, PARAMS, T0)
        assert bool(screen_stress([val], scenarios_of(b), PARAMS)) is screened


def test_a_possible_stress_finding_is_left_to_the_exact_path():
    # The wallet dark leaves 3,150 USDC and the hedge against a 12,000 loan: 8,680 short, above 5,000.
    b = eth_book("short", "3150", "12000")
    tight = replace(PARAMS, max_stress_shortfall=D(5000))
    exact = [stress(b, PRICES, tight, T0, sc) for sc in scenarios_of(b)["short"]]
    assert stress_findings("short", exact, tight)  # the exact path raises one ...
    [val] = revalue_book([b], PRICES, tight, T0)
    assert screen_stress([val], scenarios_of(b), tight) == {}  # ... so the screen does not stand in
    [val] = revalue_book([b], PRICES, LIMITED, T0)
    assert "short" in screen_stress([val], scenarios_of(b), LIMITED)  # 20,000 is far above it


def test_blind_or_odd_inputs_fail_closed():
    blind = book("blind", [bal("w", "ETH", "10")], loan="100", venues=VENUES, blind=["bn"])
    unpriced = book("unpriced", [bal("w", "ETH", "10"), bal("w", "DOGE", "5")], loan="100", venues=VENUES)
    vals = revalue_book([blind, unpriced], PRICES, PARAMS, T0)
    assert screen_stress(vals, scenarios_of(blind, unpriced), PARAMS) == {}
    bad_bands = replace(PARAMS, ladder=replace(PARAMS.ladder, warn=D(0)))
    assert _thresholds(bad_bands) is None
    [val] = revalue_book([eth_book("x", "3150", "12000")], PRICES, bad_bands, T0)
    assert screen_stress([val], scenarios_of(eth_book("x", "3150", "12000")), bad_bands) == {}
    th = _thresholds(PARAMS)
    assert th is not None
    for owed, coll in ((math.nan, 1.0), (1.0, math.inf), (math.inf, 1.0), (1.0, 0.0)):
        assert not _far(owed, coll, 1e-9, th, None, loan=True)


legs = st.lists(st.tuples(st.sampled_from(["BTC", "ETH"]), st.sampled_from(["bn", "dx"]),
                          st.decimals(min_value=-20, max_value=20, places=2),
                          st.integers(min_value=1000, max_value=80000)), max_size=5)
client = st.tuples(legs, st.decimals(min_value=0, max_value=50, places=1), st.integers(min_value=0, max_value=500_000),
                   st.integers(min_value=0, max_value=400_000))
# How far from a threshold the loan puts the client: on it, within float noise, or clearly away.
nudges = st.sampled_from([D(0), D("1e-15"), D("-1e-15"), D("1e-11"), D("-1e-11"), D("1e-7"), D("-1e-6"), D("0.01")])


def random_book(cid: str, spec: tuple, loan: D | None = None) -> ClientBook:
    ls, eth, usdc, principal = spec
    positions = [perp(acct, u, str(size), str(entry if u == "BTC" else entry // 20)) for u, acct, size, entry in ls]
    return book(cid, [bal("bn", "USDC", str(usdc)), bal("dx", "ETH", str(eth)), bal("w", "BTC", "0.5")], positions,
                loan=str(principal if loan is None else loan), venues=VENUES)


@settings(max_examples=120, deadline=None)
@given(st.lists(client, min_size=1, max_size=4), st.integers(min_value=0, max_value=12), nudges,
       st.sampled_from([None, D(0), D(20_000), D(150_000)]))
def test_property_screen_never_classifies_differently_from_the_exact_path(specs, pick, nudge, limit):
    params = replace(PARAMS, max_stress_shortfall=limit)
    thresholds = _thresholds(params)
    assert thresholds is not None
    books = [random_book(f"c{i}", s) for i, s in enumerate(specs)]
    # Put the first client's loan on (or next to) a threshold under one of its scenarios.
    first = scenarios_of(books[0])["c0"]
    sc = first[pick % len(first)]
    coll = stress(books[0], PRICES, params, T0, sc).haircut_collateral
    if coll > 0:
        band = D(str(thresholds[pick % len(thresholds)]))
        books[0] = random_book("c0", specs[0], loan=(band * coll * (1 + nudge)).quantize(D("1e-20")) or D(1))
    vals = revalue_book(books, PRICES, params, T0)
    screened = screen_stress(vals, scenarios_of(*books), params)
    for b in books:
        fast = screened.get(b.client.id)
        if fast is None:
            continue
        exact = [stress(b, PRICES, params, T0, s) for s in scenarios_of(b)[b.client.id]]
        assert stress_findings(b.client.id, exact, params) == []
        for x, r in zip(fast.ltv, exact, strict=True):
            assert r.ltv is not None
            ex = math.inf if not r.ltv.is_finite() else r.ltv
            assert region(x, thresholds) == sum(ex >= D(str(t)) for t in thresholds), (b.client.id, r.scenario)
            assert math.isinf(x) == (not r.ltv.is_finite())


def test_tolerance_is_far_above_the_float_error_bound():
    # ~16 ulps of the magnitude bound the float error (docs/performance.md); the margin is 2^-30.
    assert SCREEN_TOLERANCE > 16 * 2.0 ** -52 * 1e4


# --- the oracle fast path's ladder screen: the same margin at new prices ----------------------------


def owed_at(b: ClientBook, ctx: ValuationContext, when) -> D:
    """What valuate takes as owed: the loan at ``when`` × the loan asset's liability price."""
    if b.loan is None:
        return D(0)
    outstanding, interest, _ = loan_due(b, when)
    return (outstanding + interest) * ctx.table[b.loan.asset].high


def test_the_ladder_screen_settles_a_far_client_and_hands_a_band_edge_over():
    moved = book_prices(BTC="60000", ETH="2700", USDC="1", USDT="1")
    ctx = ValuationContext(moved, PARAMS)
    far = eth_book("far", "3150", "12000")
    [base] = revalue_book([far], PRICES, PARAMS, T0)
    got = screen_ltv([(base, owed_at(far, ctx, T0))], ctx)
    exact = valuate(far, moved, PARAMS, T0, context=ctx)
    assert exact.ltv is not None and math.isclose(got["far"], float(exact.ltv), rel_tol=1e-12)
    # The loan set so the LTV at the new prices is exactly the warn rung's exit (0.48).
    edge = PARAMS.ladder.warn - PARAMS.ladder.hysteresis
    probe = eth_book("edge", "3150", "1")
    coll = valuate(probe, moved, PARAMS, T0, context=ctx).haircut_collateral
    b = eth_book("edge", "3150", str(coll * edge))
    assert valuate(b, moved, PARAMS, T0, context=ctx).ltv == edge
    [base] = revalue_book([b], PRICES, PARAMS, T0)
    assert screen_ltv([(base, owed_at(b, ctx, T0))], ctx) == {}
    # An asset without a price now, or a blind base: the exact path.
    no_eth = ValuationContext(book_prices(BTC="60000", USDC="1", USDT="1"), PARAMS)
    [base] = revalue_book([far], PRICES, PARAMS, T0)
    assert screen_ltv([(base, owed_at(far, no_eth, T0))], no_eth) == {}
    blind = book("blind", [bal("w", "ETH", "10")], loan="100", venues=VENUES, blind=["bn"])
    [base] = revalue_book([blind], PRICES, PARAMS, T0)
    assert screen_ltv([(base, D(100))], ctx) == {}
    assert screen_ltv([(revalue_book([far], PRICES, PARAMS, T0)[0], D("NaN"))], ctx) == {}


moves = st.tuples(st.sampled_from(["BTC", "ETH"]), st.decimals(min_value=D("0.3"), max_value=D("1.8"), places=3))


@settings(max_examples=150, deadline=None)
@given(st.lists(client, min_size=1, max_size=4), moves, st.integers(min_value=0, max_value=7), nudges,
       st.sampled_from(list(LadderState)), st.sampled_from(["0", "0.08"]))
def test_property_ladder_screen_never_gives_a_different_rung_than_the_exact_path(specs, move, pick, nudge,
                                                                               state, rate):
    asset, factor = move
    now = at(30)  # interest accrues between the base valuation and the oracle round
    new = {"BTC": D(60000), "ETH": D(3000), "USDC": D(1), "USDT": D(1)}
    new[asset] *= factor
    moved = book_prices(**{a: str(p) for a, p in new.items()})
    ctx = ValuationContext(moved, PARAMS)
    thresholds = _thresholds(PARAMS)
    assert thresholds is not None

    def with_rate(b: ClientBook) -> ClientBook:
        return replace(b, loan=None if b.loan is None else replace(b.loan, annual_rate=D(rate)))

    books = [with_rate(random_book(f"c{i}", s)) for i, s in enumerate(specs)]
    # Put the first client's LTV at the new prices on (or next to) a threshold.
    probe = valuate(books[0], moved, PARAMS, now, context=ctx)
    if probe.haircut_collateral > 0 and probe.loan > 0:
        band = D(str(thresholds[pick % len(thresholds)]))
        scale = band * probe.haircut_collateral * (1 + nudge) / probe.loan
        books[0] = with_rate(random_book("c0", specs[0], loan=(books[0].loan.principal * scale).quantize(D("1e-20"))
                                         or D(1)))
    bases = revalue_book(books, PRICES, PARAMS, T0)
    screened = screen_ltv([(v, owed_at(b, ctx, now)) for v, b in zip(bases, books, strict=True)], ctx)
    prev = LadderStatus(state, T0, (None,) * int(state), at(3600) if state == LadderState.MARGIN_CALL else None)
    for b in books:
        x = screened.get(b.client.id)
        if x is None:
            continue
        exact = valuate(b, moved, PARAMS, now, context=ctx)
        assert exact.ltv is not None and not exact.blind
        ex = math.inf if not exact.ltv.is_finite() else exact.ltv
        assert region(x, thresholds) == sum(ex >= D(str(t)) for t in thresholds), b.client.id
        assert math.isinf(x) == (not exact.ltv.is_finite())
        fast = step(prev, D(x) if math.isfinite(x) else exact.ltv, now, PARAMS.ladder)
        assert fast == step(prev, exact.ltv, now, PARAMS.ladder), b.client.id  # the same rung, the same status
