"""Issue E benchmark: revalue 10,000 clients × 50 positions and run 5 stress scenarios.

Book: each client has a Binance, OKX, Bybit and dYdX account and an EVM wallet; 5 balances
(USDC per venue, ETH in the wallet), 50 perp positions over 10 underlyings drawn from a 40-asset
universe (per underlying a long leg in 3 fills on one venue and a short leg in 2 fills on
another: a cross-venue basis trade; 5 % of clients are directional), with liquidation prices
(1 % of positions near them), and a USDC loan at 8 % for 30 days. Prices: an on-chain oracle, a
venue mark and, for 11 assets, a dYdX oracle; 4 assets' sources disagree beyond 2 %, 6 dYdX
reads are stale.

Ours (one timed run = the whole sweep's risk step):
  ``select_prices`` → ``revalue_book`` (Decimal: every metric, finding and LTV a decision uses)
  → ``grid_inputs`` + ``stress_grid`` (floats, analytics) for 5 scenarios: correlated −10, −20,
  −30, −50 % and a 1 % funding spike.
Baseline (same run, same inputs): the straightforward implementation: for every position, look
its price up again from the quotes (freshness, priority, cross-check), value it in Decimal and
sum per client; then the same per position again for each scenario, all in Decimal.
A second, informational line does the same with one scenario, Binance going dark, which needs a
second pass over the positions on that venue.

Both must agree: the baseline's LTVs equal ours exactly; its stressed LTVs equal the grid's to
float rounding (checked before the figures are printed). Per-position liquidation distances
are computed lazily by ours (on ``.positions`` / JSON), so they are left out of both timings;
positions near liquidation are found in both. GC is frozen after the inputs are built, for both
(``revalue_book`` also pauses the collector while it runs; see ``risk.portfolio.gc_paused``).
Ours is the best of ``--rounds`` runs (this 2-core machine is shared); the baseline runs once.

Target: ours < 1 s on the 2-core box. Run: ``.venv/bin/python tests/bench/bench_risk.py``
(``--clients N`` for a smaller book; the target scales with it). Exit status 1 when the first
line misses its target.
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.benchlib import Result, report

from primeguard.domain import money  # noqa: F401  (sets the Decimal context: prec 80)
from primeguard.domain.model import Balance, Client, Loan, Position, PriceQuote, PriceSourceKind, VenueKind
from primeguard.risk.params import LadderBands, RiskParameters
from primeguard.risk.portfolio import revalue_book
from primeguard.risk.pricing import select_prices
from primeguard.risk.stress import StressScenario, grid_inputs, stress_grid
from primeguard.risk.valuation import INFINITE, ClientBook

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
D = Decimal
ASSETS = [f"C{i:02d}" for i in range(40)]
VENUES = (("bn", VenueKind.BINANCE, "binance"), ("okx", VenueKind.OKX, "okx"),
          ("byb", VenueKind.BYBIT, "bybit"), ("dydx", VenueKind.DYDX, "dydx"))
SCENARIOS = [StressScenario(f"all {int(s * 100)}%", {"*": s}) for s in (D("-0.1"), D("-0.2"), D("-0.3"), D("-0.5"))]
SCENARIOS.append(StressScenario("funding 1%", funding_spike=D("0.01")))
DARK = StressScenario("binance dark", venue_dark="binance")
PARAMS = RiskParameters(
    ladder=LadderBands(D("0.6"), D("0.7"), D("0.8"), D("0.9")),
    haircuts={"USDC": D(0), "ETH": D("0.1"), **{a: D("0.2") for a in ASSETS[:10]}},
    default_haircut=D("0.3"), max_leverage=D(5), max_net_delta_ratio=D("0.3"),
    low_liquidity_assets=frozenset(ASSETS[30:]),
    price_max_age_by_source={PriceSourceKind.VENUE_MARK: 60, PriceSourceKind.DYDX_ORACLE: 60},
)


def build(n_clients: int, seed: int = 7) -> tuple[list[PriceQuote], list[ClientBook]]:
    rnd = random.Random(seed)
    mids = {a: D(rnd.randint(50, 500_000)) / 100 for a in ASSETS} | {"ETH": D(3000), "USDC": D(1)}
    quotes: list[PriceQuote] = []
    for i, (a, p) in enumerate(sorted(mids.items())):
        quotes.append(PriceQuote(a, p, PriceSourceKind.ORACLE, f"feed:{a}", NOW - timedelta(seconds=30), NOW))
        mark = p * (D("1.03") if i % 13 == 0 else D("1.001"))  # a few sources disagree beyond 2 %
        quotes.append(PriceQuote(a, mark, PriceSourceKind.VENUE_MARK, f"binance:{a}", NOW - timedelta(seconds=2), NOW))
        if i % 4 == 0:
            age = 600 if i % 8 == 0 else 5  # some dYdX oracle reads are stale
            quotes.append(PriceQuote(a, p, PriceSourceKind.DYDX_ORACLE, f"dydx:{a}", NOW - timedelta(seconds=age), NOW))
    books: list[ClientBook] = []
    for c in range(n_clients):
        cid = f"client-{c:05d}"
        venues = {f"{cid}-{v}": label for v, _, label in VENUES} | {f"{cid}-evm": "evm:ethereum"}
        accts = [(f"{cid}-{v}", kind) for v, kind, _ in VENUES]
        balances = [Balance(a, "USDC", D(rnd.randint(100_000, 2_000_000)), NOW, "bench") for a, _ in accts]
        balances.append(Balance(f"{cid}-evm", "ETH", D(rnd.randint(0, 20_000)) / 100, NOW, "bench"))
        equity = sum((b.quantity for b in balances[:4]), D(0))
        directional = rnd.random() < 0.05  # most financed books are delta neutral; a few are not
        positions = []
        for u in rnd.sample(ASSETS, 10):
            # Per underlying: a long leg in 3 fills on one venue, a short leg in 2 fills on another
            # (a cross-venue basis / funding trade), about 12 % of equity each.
            mid = mids[u]
            qty = (equity * D("0.12") / mid).quantize(D("0.01")) or D("0.01")
            (la, lk), (sa, sk) = rnd.sample(accts, 2)
            legs = [(la, lk, qty / 3), (la, lk, qty / 3), (la, lk, qty - 2 * (qty / 3)),
                    (sa, sk, -qty / 2), (sa, sk, -(qty - qty / 2) * (3 if directional else 1))]
            for acct, kind, size in legs:
                size = size.quantize(D("0.0001"))
                entry = (mid * D(rnd.randint(950, 1050)) / 1000).quantize(D("0.0001"))
                far = rnd.random() > 0.01  # 1 % of positions sit near their liquidation price
                liq = (mid * ((D("0.7") if far else D("0.95")) if size > 0 else (D("1.3") if far else D("1.05"))))
                positions.append(Position(acct, kind, f"{u}-PERP", u, size, entry, mid, NOW, "bench",
                                          liquidation_price=liq.quantize(D("0.0001"))))
        loan = Loan(cid, (equity * D(rnd.randint(30, 60)) / 100).quantize(D(1)), "USDC", D("0.08"),
                    NOW - timedelta(days=30))
        books.append(ClientBook(Client(cid, cid), loan, tuple(balances), tuple(positions), (), venues))
    return quotes, books


# --- ours ------------------------------------------------------------------------------------


def ours(quotes: list[PriceQuote], books: list[ClientBook], scenarios: Sequence[StressScenario],
         dark: Sequence[str] = ()) -> tuple[list[Decimal | None], list[list[float]], dict[str, float]]:
    t0 = time.perf_counter()
    prices = select_prices(quotes, NOW, PARAMS, wanted=("USDC", "ETH"))
    t1 = time.perf_counter()
    vals = revalue_book(books, prices, PARAMS, NOW)
    t2 = time.perf_counter()
    grid = stress_grid(grid_inputs(vals, dark_venues=dark), scenarios, PARAMS)
    t3 = time.perf_counter()
    return [v.ltv for v in vals], grid, {"prices_s": t1 - t0, "revalue_s": t2 - t1, "grid_s": t3 - t2}


# --- baseline: the straightforward per-position loop -------------------------------------------


def naive_price(quotes: Sequence[PriceQuote], asset: str) -> tuple[Decimal, Decimal, Decimal] | None:
    """(collateral, liability, reference) price of ``asset``, selected from scratch."""
    rank = {k: i for i, k in enumerate(PARAMS.price_source_priority)}
    fresh = []
    for q in quotes:
        if q.asset != asset:
            continue
        budget = PARAMS.price_max_age_by_source.get(q.source, PARAMS.price_max_age_s)
        if q.price > 0 and (NOW - q.updated_at) <= timedelta(seconds=budget):
            fresh.append(q)
    ranked = [q for q in fresh if q.source in rank]
    if not ranked:
        return None
    primary = min(ranked, key=lambda q: rank[q.source])
    lo, hi = min(q.price for q in fresh), max(q.price for q in fresh)
    if (hi - lo) / lo > PARAMS.oracle_max_deviation:
        return lo, hi, primary.price
    return primary.price, primary.price, primary.price


def naive_ltv(quotes_by_asset: dict[str, list[PriceQuote]], book: ClientBook,
              sc: StressScenario | None = None) -> Decimal | None:
    shock = D(0) if sc is None else sc.shocks.get("*", D(0))
    dark = None if sc is None else sc.venue_dark
    funding = D(0) if sc is None else sc.funding_spike

    def price(asset: str, side: int) -> Decimal | None:
        p = naive_price(quotes_by_asset.get(asset, []), asset)  # looked up again every time
        if p is None:
            return None
        f = 1 if asset in PARAMS.stablecoins else 1 + shock
        return (p[0] if side > 0 else p[1] if side < 0 else p[2]) * f

    coll = D(0)
    groups: dict[str, list[Position]] = {}
    for pos in book.positions:
        if dark is not None and book.account_venues[pos.account_id] == dark:
            continue
        groups.setdefault(pos.underlying, []).append(pos)
    for u, ps in groups.items():
        net = sum((p.size for p in ps), D(0))
        pnl = D(0)
        for p in ps:
            px = price(u, 1 if net > 0 else -1)
            ref = price(u, 0)
            if px is None or ref is None:
                return None
            pnl += p.size * (px - p.entry_price)
            coll -= funding * abs(p.size) * ref
            lq = p.liquidation_price
            if lq is not None and abs(px - lq) / px < PARAMS.near_liquidation:
                pass  # a finding in real code
        coll += pnl if pnl < 0 else pnl * (1 - PARAMS.haircut(u))
    for b in book.balances:
        if dark is not None and book.account_venues[b.account_id] == dark:
            continue
        px = price(b.asset, 1 if b.quantity > 0 else -1)
        if px is None:
            return None
        v = b.quantity * px
        coll += v * (1 - PARAMS.haircut(b.asset)) if v > 0 else v
    assert book.loan is not None
    loan = book.loan
    seconds = D((NOW - loan.start).days * 86400 + (NOW - loan.start).seconds)
    loan_px = price(loan.asset, -1)
    if loan_px is None:
        return None
    owed = (loan.principal + loan.principal * (loan.annual_rate * (seconds / D(365 * 86400)))) * loan_px
    return INFINITE if coll <= 0 else owed / coll


def baseline(quotes: list[PriceQuote], books: list[ClientBook], scenarios: Sequence[StressScenario],
             ) -> tuple[list[Decimal | None], list[list[Decimal | None]]]:
    by_asset: dict[str, list[PriceQuote]] = {}
    for q in quotes:
        by_asset.setdefault(q.asset, []).append(q)
    base = [naive_ltv(by_asset, b) for b in books]
    return base, [[naive_ltv(by_asset, b, sc) for b in books] for sc in scenarios]


def check(ours_ltv: list[Decimal | None], ours_grid: list[list[float]], base_ltv: list[Decimal | None],
          base_grid: list[list[Decimal | None]]) -> None:
    assert ours_ltv == base_ltv, "exact LTVs differ from the baseline"
    for row_o, row_b in zip(ours_grid, base_grid, strict=True):
        for o, b in zip(row_o, row_b, strict=True):
            assert b is not None
            assert (math.isinf(o) and not b.is_finite()) or math.isclose(o, float(b), rel_tol=1e-9), (o, b)


def run(name: str, quotes: list[PriceQuote], books: list[ClientBook], scenarios: Sequence[StressScenario],
        dark: Sequence[str], rounds: int, target: float) -> Result:
    best = math.inf
    o_ltv: list[Decimal | None] = []
    o_grid: list[list[float]] = []
    parts: dict[str, float] = {}
    for _ in range(rounds):
        t0 = time.perf_counter()
        o_ltv, o_grid, p = ours(quotes, books, scenarios, dark)
        dt = time.perf_counter() - t0
        if dt < best:
            best, parts = dt, p
        gc.collect()
    t0 = time.perf_counter()
    b_ltv, b_grid = baseline(quotes, books, scenarios)
    base_s = time.perf_counter() - t0
    check(o_ltv, o_grid, b_ltv, b_grid)
    return Result(name, best, base_s, f"< {target:g} s (ours)", best < target,
                  {"clients": len(books), "positions": sum(len(b.positions) for b in books),
                   "scenarios": [sc.name for sc in scenarios], **{k: round(v, 4) for k, v in parts.items()}})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--clients", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3, help="best of N timed runs of ours")
    args = ap.parse_args(argv)
    quotes, books = build(args.clients)
    gc.collect()
    gc.freeze()  # the inputs are long-lived, as a sweep's observation is; same for both sides
    target = 1.0 * args.clients / 10_000
    results = [
        run(f"risk_revalue_{args.clients}x50_5_scenarios", quotes, books, SCENARIOS, (), args.rounds, target),
        run(f"risk_revalue_{args.clients}x50_venue_dark_info", quotes, books, [DARK], ("binance",), args.rounds,
            target),
    ]
    results[1].extra["informational"] = True  # its "ok" is shown, but only the first line gates the exit status
    report(results)
    return 0 if results[0].ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
