"""Stress: what the LTV becomes under price shocks, funding spikes or a venue going dark, and
what liquidating would cost.

Two paths (docs/risk.md, "Stress"):

- :func:`stress` is exact (Decimal): it re-values the client on a shocked world with
  :func:`~primeguard.risk.valuation.valuate`. It feeds reports, policy and the daemon.
- :func:`stress_grid` is the analytics path for whole books: floats, flat arrays built once
  from the valuations (:func:`grid_inputs`), then one pass of list comprehensions per scenario.
  Nothing decides on it. It follows the same conventions and matches :func:`stress` to float
  rounding (tested); it leaves out liquidation cost.

Scenario semantics:

- ``shocks``: asset → relative move (−0.3 = −30 %); ``"*"`` applies to every non-stable asset
  without its own entry (correlated shock). Stablecoins move only when named.
- ``idiosyncratic``: shock each non-stable asset the client holds *alone* by this amount and keep
  the worst LTV (``worst_asset`` says which).
- ``venue_dark``: every balance and position on that venue counts as zero (the loan stays).
  Matches a venue label exactly or its prefix before ``:`` (``"evm"`` matches ``"evm:ethereum"``).
- ``funding_spike``: each position pays this fraction of its notional at once, whatever its side
  (a funding flip against a hedged book; deliberately pessimistic).
- Liquidation cost: every holding, borrowed balance and net position per (venue, asset) is
  closed at its class's slippage (:class:`~primeguard.risk.params.LiquidityClass`); the loan asset and USD are not sold.
  Recovery = equity − cost; shortfall = max(0, loan − recovery).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from functools import reduce
from itertools import accumulate, compress, pairwise
from math import fsum, isfinite
from operator import add, mul
from types import MappingProxyType
from typing import Any

from primeguard.risk.params import RiskParameters
from primeguard.risk.pricing import UNIT, PriceBook, PricePick, dec_str
from primeguard.risk.valuation import INFINITE, ZERO, ClientBook, ClientValuation, ValuationContext, valuate

ALL = "*"


@dataclass(frozen=True, slots=True)
class StressScenario:
    name: str
    shocks: Mapping[str, Decimal] = field(default_factory=lambda: MappingProxyType({}))
    venue_dark: str | None = None
    funding_spike: Decimal = Decimal(0)  # fraction of each position's notional paid at once
    idiosyncratic: Decimal | None = None  # shock each held asset alone, keep the worst

    def factor(self, asset: str, stablecoins: frozenset[str]) -> Decimal:
        """Price multiplier for ``asset`` under the correlated part of the scenario."""
        own = self.shocks.get(asset)
        if own is not None:
            return 1 + own
        if asset in stablecoins or asset == UNIT:
            return Decimal(1)
        return 1 + self.shocks.get(ALL, Decimal(0))


@dataclass(frozen=True, slots=True)
class StressResult:
    scenario: str
    ltv: Decimal | None
    equity: Decimal
    liquidation_cost: Decimal
    ltv_after_liquidation: Decimal | None  # loan / (equity − liquidation cost)
    haircut_collateral: Decimal = ZERO
    loan: Decimal = ZERO
    recovery: Decimal = ZERO  # equity − liquidation cost
    shortfall: Decimal = ZERO  # max(0, loan − recovery): what the PB would lose
    worst_asset: str | None = None
    blind: bool = False

    def to_json_dict(self) -> dict[str, Any]:
        s = dec_str
        return {"scenario": self.scenario, "ltv": s(self.ltv), "equity": s(self.equity),
                "haircut_collateral": s(self.haircut_collateral), "loan": s(self.loan),
                "liquidation_cost": s(self.liquidation_cost), "recovery": s(self.recovery),
                "shortfall": s(self.shortfall), "ltv_after_liquidation": s(self.ltv_after_liquidation),
                "worst_asset": self.worst_asset, "blind": self.blind}

    to_json = to_json_dict


def default_scenarios(venues: Iterable[str] = ()) -> list[StressScenario]:
    """The standard set: correlated −10/−20/−30/−50 %, a +20 % squeeze, the worst single asset
    −50 %, a 1 % funding spike, and each venue going dark."""
    out = [StressScenario(f"all risk assets {int(p * 100)}%", MappingProxyType({ALL: p}))
           for p in (Decimal("-0.10"), Decimal("-0.20"), Decimal("-0.30"), Decimal("-0.50"))]
    out.append(StressScenario("all risk assets +20%", MappingProxyType({ALL: Decimal("0.20")})))
    out.append(StressScenario("worst single asset -50%", idiosyncratic=Decimal("-0.50")))
    out.append(StressScenario("funding spike 1% of notional", funding_spike=Decimal("0.01")))
    out += [StressScenario(f"{v} goes dark", venue_dark=v) for v in sorted(set(venues))]
    return out


def _dark(label: str, dark: str | None) -> bool:
    return dark is not None and (label == dark or label.split(":", 1)[0] == dark)


def shocked_prices(prices: PriceBook, scenario: StressScenario, stablecoins: frozenset[str],
                   extra: Mapping[str, Decimal] | None = None) -> PriceBook:
    """The price book with every pick multiplied by the scenario's factor (and ``extra`` shocks)."""
    picks: dict[str, PricePick] = {}
    for asset, pick in prices.picks.items():
        f = scenario.factor(asset, stablecoins)
        if extra and asset in extra:
            f = 1 + extra[asset]
        if f == 1:
            picks[asset] = pick
        else:
            picks[asset] = replace(pick, collateral=pick.collateral * f, liability=pick.liability * f,
                                   reference=pick.reference * f)
    return PriceBook(MappingProxyType(picks), prices.findings, prices.missing, prices.as_of,
                     prices.findings_by_asset)


class ShockedBooks:
    """Shocked price books and their valuation contexts, shared between clients valued with the
    same prices and parameters (one evaluation's stress runs): a scenario's book is built once,
    not once per client. Pure memo: the results are those of :func:`shocked_prices`."""

    def __init__(self) -> None:
        self._books: dict[tuple[Any, ...], tuple[PriceBook, RiskParameters, PriceBook, ValuationContext]] = {}

    def get(self, prices: PriceBook, params: RiskParameters, scenario: StressScenario,
            extra: Mapping[str, Decimal] | None) -> tuple[PriceBook, ValuationContext]:
        """The book ``prices`` under ``scenario`` (and ``extra`` shocks), with its context."""
        key = (id(prices), id(params), tuple(sorted(scenario.shocks.items())),
               tuple(sorted(extra.items())) if extra else ())
        hit = self._books.get(key)
        if hit is None or hit[0] is not prices or hit[1] is not params:
            book = shocked_prices(prices, scenario, params.stablecoins, extra)
            hit = (prices, params, book, ValuationContext(book, params))
            self._books[key] = hit
        return hit[2], hit[3]


def without_venue(book: ClientBook, venue: str | None) -> ClientBook:
    """The book with everything on ``venue`` removed (a venue gone dark)."""
    if venue is None:
        return book
    dark = {a for a, v in book.account_venues.items() if _dark(v, venue)}
    return replace(book,
                   balances=tuple(b for b in book.balances if b.account_id not in dark),
                   positions=tuple(p for p in book.positions if p.account_id not in dark
                                   and not (p.account_id not in book.account_venues and _dark(p.venue.value, venue))))


def liquidation_cost(book: ClientBook, prices: PriceBook, params: RiskParameters) -> Decimal:
    """Cost of selling every holding and closing every net position at once (exact Decimal)."""
    loan_asset = book.loan.asset if book.loan else None
    lots: dict[tuple[str, str], Decimal] = {}
    for b in book.balances:
        if not b.quantity or b.asset in (UNIT, loan_asset):
            continue
        # Sell what is held; buy back what is borrowed (a negative balance).
        price = prices.collateral(b.asset) if b.quantity > 0 else prices.liability(b.asset)
        if price is not None:
            key = (book.venue_of(b.account_id), b.asset)
            lots[key] = lots.get(key, ZERO) + abs(b.quantity) * price
    nets: dict[tuple[str, str, str], Decimal] = {}
    venues = book.account_venues  # book.venue_of_position, inlined: this loop runs per position per scenario
    for p in book.positions:
        key3 = (p.account_id, venues.get(p.account_id) or p.venue.value, p.underlying)
        nets[key3] = nets.get(key3, ZERO) + p.size
    for (_, venue, u), net in nets.items():
        price = prices.collateral(u) if net > 0 else prices.liability(u)
        if price is not None and net:
            key = (venue, u)
            lots[key] = lots.get(key, ZERO) + abs(net) * price
    cost = ZERO
    classes: dict[str, Any] = {}
    for (_, asset), notional in lots.items():
        liquidity = classes.get(asset)
        if liquidity is None:
            liquidity = classes[asset] = params.liquidity_of(asset)
        cost += notional * liquidity.slippage(notional)
    return cost


def _ltv(owed: Decimal, collateral: Decimal) -> Decimal:
    if owed == 0:
        return ZERO
    return INFINITE if collateral <= 0 else owed / collateral


def stress(book: ClientBook, prices: PriceBook, params: RiskParameters, now: datetime,
           scenario: StressScenario, *, books: ShockedBooks | None = None) -> StressResult:
    """LTV and liquidation outcome of one client under one scenario (exact). ``books`` shares the
    shocked price books between the clients of one evaluation (same result without it)."""
    books = books if books is not None else ShockedBooks()
    if scenario.idiosyncratic is not None:
        return _idiosyncratic(book, prices, params, now, scenario, books)
    return _one(book, prices, params, now, scenario, None, books)


def _one(book: ClientBook, prices: PriceBook, params: RiskParameters, now: datetime, scenario: StressScenario,
         extra: Mapping[str, Decimal] | None, books: ShockedBooks) -> StressResult:
    shocked, context = books.get(prices, params, scenario, extra)
    live = without_venue(book, scenario.venue_dark)
    val = valuate(live, shocked, params, now, context=context)
    funding = scenario.funding_spike * val.gross_notional
    equity = val.equity - funding
    coll = val.haircut_collateral - funding
    cost = liquidation_cost(live, shocked, params)
    recovery = equity - cost
    return StressResult(scenario.name, _ltv(val.loan, coll), equity, cost, _ltv(val.loan, recovery), coll,
                        val.loan, recovery, max(ZERO, val.loan - recovery), None, val.blind)


def _idiosyncratic(book: ClientBook, prices: PriceBook, params: RiskParameters, now: datetime,
                   scenario: StressScenario, books: ShockedBooks) -> StressResult:
    assert scenario.idiosyncratic is not None
    held = sorted({b.asset for b in book.balances if b.quantity} | {p.underlying for p in book.positions if p.size})
    assets = [a for a in held if a not in params.stablecoins and a != UNIT and a in prices.picks]
    worst: StressResult | None = None
    for a in assets:
        r = _one(book, prices, params, now, scenario, {a: scenario.idiosyncratic}, books)
        if worst is None or (r.ltv or ZERO) > (worst.ltv or ZERO):
            worst = replace(r, worst_asset=a)
    if worst is None:  # nothing volatile held: the shock changes nothing
        worst = _one(book, prices, params, now, replace(scenario, idiosyncratic=None), None, books)
    return worst


# --- analytics path: the whole book, flattened --------------------------------------------


@dataclass(frozen=True, slots=True)
class GridInputs:
    """A whole book flattened for :func:`stress_grid` (floats: analytics only).

    Position rows: one per client per underlying, ``prow[j] <= i < prow[j+1]`` for client ``j``;
    at price multiplier ``m`` a row is worth ``value·m − cost`` (``value`` = net × the
    conservative-side price, as in the valuation), haircut (× ``keep``) when positive. Balances
    enter per client as their haircut value in stablecoins and in everything else (a uniform
    shock moves the latter only); per-asset shocks and dark venues use the ``book``'s balances.
    """

    clients: tuple[str, ...]
    owed: list[float]  # USD at the base liability price of the loan asset
    loan_asset: list[str | None]
    notional_risky: list[float]  # Σ |size| × reference price of non-stable underlyings (funding base)
    notional_stable: list[float]
    bal_stable: list[float]
    bal_risky: list[float]
    prow: list[int]
    p_asset: list[str]
    p_net: list[float]
    p_value: list[float]
    p_cost: list[float]
    p_keep: list[float]
    p_risky: list[bool]  # moved by a "*" shock
    valuations: tuple[ClientValuation, ...]  # for the general path (per-asset shocks, dark venues)
    dark_net: Mapping[str, list[float]]
    dark_cost: Mapping[str, list[float]]
    dark_bal_stable: Mapping[str, list[float]]  # per client: haircut balance value on the venue
    dark_bal_risky: Mapping[str, list[float]]


def grid_inputs(valuations: Sequence[ClientValuation], dark_venues: Iterable[str] = ()) -> GridInputs:
    """Flatten valuations for :func:`stress_grid`, reusing their per-underlying sums.

    All valuations must share one price context (one ``revalue_book`` call with one parameter
    set). ``dark_venues`` lists the venues a scenario may switch off; their share of each row is
    summed here from the positions on that venue's accounts (one pass over the positions).
    """
    vals = tuple(v for v in valuations if v.context is not None and v.book is not None)
    if not vals:
        raise ValueError("no valuations with a price context to flatten")
    ctx = vals[0].context
    assert ctx is not None
    if any(v.context is not ctx for v in vals):
        raise ValueError("grid_inputs needs valuations from one price context (one parameter set)")
    table = ctx.table
    stable = ctx.params.stablecoins
    keep_of = {a: float(t.keep) for a, t in table.items()}
    side = {a: (float(t.low), float(t.high)) for a, t in table.items()}
    unders = [v.underlyings for v in vals]
    p_asset = [u.asset for us in unders for u in us]
    p_net = [float(u.net) for us in unders for u in us]
    p_value = [n * (lh[0] if n > 0 else lh[1]) for n, lh in zip(p_net, map(side.__getitem__, p_asset), strict=True)]
    dark_net: dict[str, list[float]] = {}
    dark_cost: dict[str, list[float]] = {}
    dark_st: dict[str, list[float]] = {}
    dark_rk: dict[str, list[float]] = {}
    for dv, parts in _dark_parts(vals, list(dict.fromkeys(dark_venues))).items():
        dark_net[dv], dark_cost[dv], dark_st[dv], dark_rk[dv] = parts
    return GridInputs(
        tuple(v.client_id for v in vals), [float(v.loan) for v in vals], [v.loan_asset for v in vals],
        [float(v.gross_notional - v.stable_notional) for v in vals], [float(v.stable_notional) for v in vals],
        [float(v.stable_collateral) for v in vals], [float(v.risky_collateral) for v in vals],
        [0, *accumulate(map(len, unders))], p_asset, p_net, p_value, [float(u.cost) for us in unders for u in us],
        [keep_of[a] for a in p_asset], [a not in stable for a in p_asset], vals,
        MappingProxyType(dark_net), MappingProxyType(dark_cost), MappingProxyType(dark_st),
        MappingProxyType(dark_rk))


def _dark_parts(valuations: Sequence[ClientValuation],
                venues: Sequence[str]) -> dict[str, tuple[list[float], list[float], list[float], list[float]]]:
    """Per venue of ``venues``, what sits on it: per position row, Σ size and Σ size × entry of
    the client's positions there; per client, the haircut value of its balances there (stable,
    other). One pass over the book for every venue; each venue's sums run in book order."""
    n_rows = sum(len(v.underlyings) for v in valuations)
    dn = [[0.0] * n_rows for _ in venues]
    dc = [[0.0] * n_rows for _ in venues]
    bst: list[list[float]] = [[] for _ in venues]
    brk: list[list[float]] = [[] for _ in venues]
    on_cache: dict[str, tuple[int, ...]] = {}  # venue label -> indexes of the venues it matches

    def matches(label: str) -> tuple[int, ...]:
        got = on_cache.get(label)
        if got is None:
            got = on_cache[label] = tuple(k for k, dv in enumerate(venues) if _dark(label, dv))
        return got

    row = 0
    for v in valuations:
        book, ctx = v.book, v.context
        assert book is not None and ctx is not None
        labels = book.account_venues
        dark: dict[str, tuple[int, ...]] = {}  # account -> the venues that switch it off
        for a, lab in labels.items():
            ks = matches(lab)
            if ks:
                dark[a] = ks
        parts: dict[int, dict[str, list[Decimal]]] = {}
        for p in book.positions:
            a = p.account_id
            ks = dark.get(a, ()) if a in labels else matches(p.venue.value)
            for k in ks:
                part = parts.get(k)
                if part is None:
                    part = parts[k] = {}
                x = part.get(p.underlying)
                if x is None:
                    part[p.underlying] = [p.size, p.size * p.entry_price]
                else:
                    x[0] += p.size
                    x[1] += p.size * p.entry_price
        for k, part in parts.items():
            dnk, dck = dn[k], dc[k]
            for r, u in enumerate(v.underlyings, start=row):
                x = part.get(u.asset)
                if x is not None:
                    dnk[r] = float(x[0])
                    dck[r] = float(x[1])
        row += len(v.underlyings)
        st = [ZERO] * len(venues)
        rk = [ZERO] * len(venues)
        if dark:
            table = ctx.table
            for b in book.balances:
                ks = dark.get(b.account_id, ())
                t = table.get(b.asset)
                if ks and t is not None and b.quantity:
                    hv = b.quantity * t.low * book.keep(b.account_id, t.keep) if b.quantity > 0 \
                        else b.quantity * t.high
                    acc = st if t.stable else rk
                    for k in ks:
                        acc[k] += hv
        for k in range(len(venues)):
            bst[k].append(float(st[k]))
            brk[k].append(float(rk[k]))
    return {dv: (dn[k], dc[k], bst[k], brk[k]) for k, dv in enumerate(venues)}


def stress_grid(inputs: GridInputs, scenarios: Sequence[StressScenario],
                params: RiskParameters) -> list[list[float]]:
    """LTV per scenario per client (``out[s][j]``), floats, for reports and charts.

    Same rules as :func:`stress` (matches it to float rounding); ``inf`` when nothing is left
    against a loan. Idiosyncratic scenarios, and a funding spike with per-asset shocks or a dark
    venue, are exact-path only; a venue-dark scenario needs its venue in
    ``grid_inputs(dark_venues=...)``. Liquidation cost is left out.
    """
    inf = float("inf")
    return [[0.0 if not o else (o / c if c > 0 else inf) for o, c in zip(owed, coll, strict=True)]
            for owed, coll in stress_grid_parts(inputs, scenarios, params)]


def stress_grid_parts(inputs: GridInputs, scenarios: Sequence[StressScenario],
                      params: RiskParameters) -> list[tuple[list[float], list[float]]]:
    """Per scenario, per client: (USD owed, stressed haircut collateral), floats; what
    :func:`stress_grid` divides. Same rules and refusals as :func:`stress_grid`.

    Each client's collateral is summed on its own with :func:`math.fsum` (correctly rounded), so
    its float error depends only on that client's own terms, never on the rest of the book (the
    bound :func:`screen_stress` relies on)."""
    stable = params.stablecoins
    assets = set(inputs.p_asset) | {a for a in inputs.loan_asset if a is not None}
    for v in inputs.valuations:
        assets.update(v.balance_values)
    out: list[tuple[list[float], list[float]]] = []
    flat: _FlatBalances | None = None  # built on the first scenario that needs each balance
    rows: _AssetRows | None = None  # likewise, the position rows per asset
    for sc in scenarios:
        if sc.idiosyncratic is not None:
            raise ValueError(f"{sc.name}: idiosyncratic scenarios are exact-path only (stress())")
        if sc.venue_dark is not None and sc.venue_dark not in inputs.dark_net:
            raise ValueError(f"{sc.name}: pass {sc.venue_dark!r} in grid_inputs(dark_venues=...)")
        uniform = set(sc.shocks) <= {ALL}  # one multiplier for every non-stable asset
        if sc.funding_spike and not (uniform and sc.venue_dark is None):
            raise ValueError(f"{sc.name}: a funding spike with a dark venue or per-asset shocks is "
                             "exact-path only (stress())")
        mult = {a: float(sc.factor(a, stable)) for a in assets}
        f = float(1 + sc.shocks.get(ALL, ZERO))
        value, cost = inputs.p_value, inputs.p_cost
        if sc.venue_dark is not None:
            # What is left may sit on the other side of zero: re-apply the side rule.
            ctx = inputs.valuations[0].context
            assert ctx is not None
            t = {a: (float(x.low), float(x.high)) for a, x in ctx.table.items()}
            value = [(q := n - d) * (t[a][0] if q > 0 else t[a][1])
                     for n, d, a in zip(inputs.p_net, inputs.dark_net[sc.venue_dark], inputs.p_asset, strict=True)]
            cost = [c - d for c, d in zip(cost, inputs.dark_cost[sc.venue_dark], strict=True)]
        if uniform:
            hc = [x * k if (x := (v * f if r else v) - c) > 0 else x
                  for v, c, k, r in zip(value, cost, inputs.p_keep, inputs.p_risky, strict=True)]
            bal = [s + r * f for s, r in zip(inputs.bal_stable, inputs.bal_risky, strict=True)]
            if sc.venue_dark is not None:
                bal = [b - s - r * f for b, s, r in zip(bal, inputs.dark_bal_stable[sc.venue_dark],
                                                        inputs.dark_bal_risky[sc.venue_dark], strict=True)]
        else:
            if sc.venue_dark is None:
                if rows is None:
                    rows = _AssetRows(inputs)
                hc = rows.haircut(mult)
            else:
                m = [mult[a] for a in inputs.p_asset]
                hc = [x * k if (x := v * g - c) > 0 else x
                      for v, g, c, k in zip(value, m, cost, inputs.p_keep, strict=True)]
            if flat is None:
                flat = _FlatBalances(inputs.valuations)
            bal = flat.totals(mult, sc.venue_dark)
        coll = [fsum((*hc[s:e], b)) for (s, e), b in zip(pairwise(inputs.prow), bal, strict=True)]
        if sc.funding_spike:
            rate = float(sc.funding_spike)
            coll = [c - rate * (r * f + st) for c, r, st in
                    zip(coll, inputs.notional_risky, inputs.notional_stable, strict=True)]
        owed = [o * mult[la] if la is not None else o for o, la in zip(inputs.owed, inputs.loan_asset, strict=True)]
        out.append((owed, coll))
    return out


class _AssetRows:
    """The position rows of :class:`GridInputs` per asset, and every row's haircut value at
    unmoved prices, for the per-asset path of :func:`stress_grid_parts` (no dark venue): a
    scenario that moves a few assets recomputes only their rows."""

    __slots__ = ("base", "inputs", "of")

    def __init__(self, inputs: GridInputs) -> None:
        self.inputs = inputs
        self.of: dict[str, list[int]] = {}
        for i, a in enumerate(inputs.p_asset):
            self.of.setdefault(a, []).append(i)
        # value × 1.0 is value, bit for bit: the row as a multiplier of 1 leaves it.
        self.base = [x * k if (x := v - c) > 0 else x
                     for v, c, k in zip(inputs.p_value, inputs.p_cost, inputs.p_keep, strict=True)]

    def haircut(self, mult: Mapping[str, float]) -> list[float]:
        """Per row: ``x × keep`` if positive else ``x``, ``x = value × mult[asset] − cost`` (the
        same floats as computing every row)."""
        inp = self.inputs
        moved = [i for a, ix in self.of.items() if mult[a] != 1.0 for i in ix]
        if 2 * len(moved) > len(self.base):
            return [x * k if (x := v * mult[a] - c) > 0 else x
                    for v, a, c, k in zip(inp.p_value, inp.p_asset, inp.p_cost, inp.p_keep, strict=True)]
        out = self.base.copy()
        value, asset, cost, keep = inp.p_value, inp.p_asset, inp.p_cost, inp.p_keep
        for i in moved:
            x = value[i] * mult[asset[i]] - cost[i]
            out[i] = x * keep[i] if x > 0 else x
        return out


class _FlatBalances:
    """Every client's balances flattened once for the per-asset path of :func:`stress_grid_parts`:
    per balance (clients in order, each client's balances in book order) its haircut value at base
    prices as a float and its asset (its venue label when a dark venue first asks); unpriced and
    zero balances left out."""

    __slots__ = ("_valuations", "_venue", "asset", "row", "value")

    def __init__(self, valuations: Sequence[ClientValuation]) -> None:
        value: list[float] = []
        asset: list[str] = []
        row = [0]
        for v in valuations:
            book, ctx = v.book, v.context
            assert book is not None and ctx is not None
            tget, account_keep = ctx.table.get, book.account_keep  # book.keep, inlined
            for b in book.balances:
                q = b.quantity
                t = tget(b.asset)
                if t is None or not q:
                    continue
                if q > 0:
                    x = q * (t.low * (account_keep.get(b.account_id, t.keep) if account_keep else t.keep))
                else:
                    x = q * t.high
                value.append(float(x))
                asset.append(b.asset)
            row.append(len(value))
        self.value, self.asset, self.row = value, asset, row
        self._valuations = valuations
        self._venue: list[str] | None = None

    def _venues(self) -> list[str]:
        """Per flattened balance, its venue label (same order and filter as the values)."""
        if self._venue is None:
            out: list[str] = []
            for v in self._valuations:
                book, ctx = v.book, v.context
                assert book is not None and ctx is not None
                table = ctx.table
                out += [book.venue_of(b.account_id) for b in book.balances if b.asset in table and b.quantity]
            self._venue = out
        return self._venue

    def totals(self, mult: Mapping[str, float], dark: str | None) -> list[float]:
        """Per client: Σ value × ``mult[asset]`` in book order from 0.0 (what a running ``+=``
        gives, bit for bit), the balances on the ``dark`` venue left out."""
        prods = list(map(mul, self.value, map(mult.__getitem__, self.asset)))
        bounds = pairwise(self.row)
        if dark is None:
            return [reduce(add, prods[s:e], 0.0) for s, e in bounds]
        venue = self._venues()
        is_dark = {lab: _dark(lab, dark) for lab in set(venue)}
        lit = [not is_dark[lab] for lab in venue]
        return [reduce(add, compress(prods[s:e], lit[s:e]), 0.0) for s, e in bounds]


# --- float screen: the exact path only near a threshold --------------------------------------

# Relative tolerance of the float screen, against a client's magnitude (see screen_stress). The
# float error of a stressed collateral is at most about (10 + the client's balance count) ulps of
# that magnitude: each term is a Decimal rounded to float and a few float operations, the
# client's position terms are summed with fsum, its balances (few) with +. 2^-30 (~9.3e-10) is
# 2^23 ulps: over 500 times the bound for any client with fewer than 10,000 balances.
SCREEN_TOLERANCE = 2.0 ** -30
MAX_SCREEN_BALANCES = 10_000  # the bound above assumes fewer; a larger book takes the exact path


@dataclass(frozen=True, slots=True)
class ScreenedStress:
    """A client's stress on the float screen, far from every threshold (analytics only).

    ``ltv`` per scenario (in the order given) is a float approximation (``inf`` when nothing is
    left against the loan); ``worst_asset`` is the single asset the idiosyncratic scenario
    picked. ``tolerance_usd`` is the margin every comparison cleared. Nothing here is money:
    :func:`screen_stress` guarantees the exact path would raise no stress finding and place
    every stressed LTV on the same side of every ladder threshold."""

    client_id: str
    scenarios: tuple[str, ...]
    ltv: tuple[float, ...]
    worst_asset: tuple[str | None, ...]
    tolerance_usd: float

    def to_json(self) -> list[dict[str, Any]]:
        """Per scenario: its name, ``method: float_screen`` and the approximate LTV (``ltv_approx``,
        the float rounded to 6 decimals, as text: the store takes no floats; ``None`` with
        ``ltv_infinite``). Money fields are left out, not guessed."""
        return [{"scenario": n, "method": "float_screen", "ltv_approx": None if not isfinite(x) else f"{x:.6f}",
                 "ltv_infinite": not isfinite(x), "worst_asset": w, "blind": False}
                for n, x, w in zip(self.scenarios, self.ltv, self.worst_asset, strict=True)]


def held_volatile(book: ClientBook, prices: PriceBook, params: RiskParameters) -> list[str]:
    """The assets the idiosyncratic scenario shocks one at a time for this client (sorted):
    held or traded, not a stablecoin, priced."""
    held = sorted({b.asset for b in book.balances if b.quantity} | {p.underlying for p in book.positions if p.size})
    return [a for a in held if a not in params.stablecoins and a != UNIT and a in prices.picks]


def _screenable(v: ClientValuation) -> bool:
    """Only plain, fully seen books go on the float screen: anything blind, unpriced, with a gap,
    a DeFi keep override, an infinite/unknown LTV or more balances than the error bound assumes
    (:data:`SCREEN_TOLERANCE`) takes the exact path."""
    return (v.book is not None and v.context is not None and not v.blind and not v.unpriced and not v.gaps
            and not v.blind_accounts and not v.book.account_keep and v.ltv is not None and v.ltv.is_finite()
            and len(v.book.balances) < MAX_SCREEN_BALANCES)


def _thresholds(params: RiskParameters) -> list[float] | None:
    """The ladder's bands and their hysteresis exits as floats; None if any is odd."""
    lad = params.ladder
    out: list[float] = []
    for b in (lad.warn, lad.margin_call, lad.halt, lad.liquidate):
        for x in (b, b - lad.hysteresis):
            if not x.is_finite() or x <= 0:
                return None
            out.append(float(x))
    return out


def _magnitude(v: ClientValuation, mmax: float) -> float:
    """An upper bound on the absolute value of every term the float grid sums for this client, at
    any multiplier up to ``mmax`` (Σ |size| × (price + |entry|) + Σ |balance| × price + owed)."""
    assert v.book is not None and v.context is not None
    table = v.context.table
    total = 0.0
    for p in v.book.positions:
        t = table.get(p.underlying)
        if t is not None and p.size:
            total += abs(float(p.size)) * (float(t.high) * mmax + abs(float(p.entry_price)))
    for b in v.book.balances:
        t = table.get(b.asset)
        if t is not None and b.quantity:
            total += abs(float(b.quantity)) * float(t.high) * mmax
    return total + abs(float(v.loan)) * mmax


def screen_stress(valuations: Sequence[ClientValuation], scenarios: Mapping[str, Sequence[StressScenario]],
                  params: RiskParameters, *, tolerance: float = SCREEN_TOLERANCE) -> dict[str, ScreenedStress]:
    """Run every client's ``scenarios`` on the float grid and return the clients whose exact
    stress cannot decide anything differently: for every scenario (for the idiosyncratic one,
    every held asset), the float stressed collateral and owed amount clear, by ``tolerance`` ×
    the client's magnitude (:func:`_magnitude`), every ladder threshold (bands and their
    hysteresis exits, compared as ``owed − band × collateral``), the sign of the collateral and
    the tier's ``max_stress_shortfall`` (the shortfall must be clearly *below* it: a finding
    carries exact figures, so a client that may exceed it is not screened).

    A client missing from the result needs the exact path (:func:`stress`): near a threshold,
    not screenable (blind, unpriced, gaps, DeFi keeps, infinite LTV), a non-finite float, an odd
    parameter, or a scenario the grid cannot run. All ``valuations`` must share one price
    context (``params``'). Pure."""
    thresholds = _thresholds(params)
    limit = params.max_stress_shortfall
    if thresholds is None or (limit is not None and (not limit.is_finite() or limit < 0)):
        return {}
    vals = [v for v in valuations if _screenable(v) and v.client_id in scenarios]
    if not vals:
        return {}
    # One grid scenario per distinct shock set; the idiosyncratic one as one per held asset. The
    # plan holds, per client and scenario, the grid index of each variant (and its asset).
    grid: dict[tuple[Any, ...], int] = {}
    runs: list[StressScenario] = []
    variant_of: dict[tuple[Any, ...], int] = {}  # (scenario's key, asset) -> grid index
    # id(scenario) -> its grid index (k,), or its key when idiosyncratic (alive in ``scenarios`` meanwhile)
    own_key: dict[int, tuple[Any, ...]] = {}
    plan: list[list[tuple[str, list[tuple[int, str | None]]]]] = []
    for v in vals:
        assert v.book is not None and v.context is not None
        rows: list[tuple[str, list[tuple[int, str | None]]]] = []
        for sc in scenarios[v.client_id]:
            own = own_key.get(id(sc))
            if own is None:
                shocks = tuple(sorted(sc.shocks.items())) if sc.shocks else ()
                own = (shocks, sc.venue_dark, sc.funding_spike, sc.idiosyncratic)
                if sc.idiosyncratic is None:
                    k = grid.get(own[:3])
                    if k is None:
                        k = grid[own[:3]] = len(runs)
                        runs.append(sc)
                    own = (k,)
                own_key[id(sc)] = own
            if sc.idiosyncratic is None:
                rows.append((sc.name, [(own[0], None)]))
                continue
            keys: list[tuple[int, str | None]] = []
            held: list[str | None] = [*held_volatile(v.book, v.context.prices, params)]
            for a in held or [None]:
                k = variant_of.get((own, a))
                if k is None:
                    g = replace(sc, idiosyncratic=None)
                    if a is not None:
                        g = replace(g, shocks=MappingProxyType({**sc.shocks, a: sc.idiosyncratic}))
                    key = (tuple(sorted(g.shocks.items())), g.venue_dark, g.funding_spike)
                    k = grid.get(key)
                    if k is None:
                        k = grid[key] = len(runs)
                        runs.append(g)
                    variant_of[(own, a)] = k
                keys.append((k, a))
            rows.append((sc.name, keys))
        plan.append(rows)
    dark = [d for d in dict.fromkeys(g.venue_dark for g in runs) if d is not None]
    try:
        parts = stress_grid_parts(grid_inputs(vals, dark_venues=dark), runs, params)
    except ValueError:  # a scenario only the exact path runs: everyone goes there
        return {}
    mmax = max([1.0, *(abs(float(g.factor(a, params.stablecoins))) for g in runs for a in g.shocks)])
    rate = max([0.0, *(abs(float(g.funding_spike)) for g in runs)])
    lim = None if limit is None else float(limit)
    bands = [(b, 1 + b) for b in thresholds]
    magnitudes = _magnitudes(vals, mmax)
    inf = float("inf")
    out: dict[str, ScreenedStress] = {}
    for j, (v, rows) in enumerate(zip(vals, plan, strict=True)):
        tol = tolerance * magnitudes[j] * (1 + rate)
        if not isfinite(tol):
            continue
        loan = v.loan != 0
        clear = [(b, tol * ob) for b, ob in bands]  # _far's comparisons, their right sides once
        shortfall_max = None if lim is None else lim - 2 * tol
        names: list[str] = []
        ltvs: list[float] = []
        worst: list[str | None] = []
        ok = True
        for name, keys in rows:
            best_x = 0.0
            best_a: str | None = None
            first = True
            for k, asset in keys:
                owed_l, coll_l = parts[k]
                owed, coll = owed_l[j], coll_l[j]
                if not _far_cleared(owed, coll, tol, clear, shortfall_max, loan):
                    ok = False
                    break
                x = (owed / coll if coll > 0 else inf) if loan else 0.0
                if first or x > best_x:
                    best_x, best_a, first = x, asset, False
            if not ok or first:
                ok = False
                break
            names.append(name)
            ltvs.append(best_x)
            worst.append(best_a)
        if ok:
            out[v.client_id] = ScreenedStress(v.client_id, tuple(names), tuple(ltvs), tuple(worst), tol)
    return out


def _magnitudes(vals: Sequence[ClientValuation], mmax: float) -> list[float]:
    """:func:`_magnitude` of each valuation (one shared price context), bit for bit: the same
    terms summed in the same order from 0.0."""
    ctx = vals[0].context
    assert ctx is not None
    high = {a: float(t.high) for a, t in ctx.table.items()}
    out: list[float] = []
    for v in vals:
        assert v.book is not None and v.context is ctx
        terms = [abs(float(p.size)) * (high[p.underlying] * mmax + abs(float(p.entry_price)))
                 for p in v.book.positions if p.underlying in high and p.size]
        terms += [abs(float(b.quantity)) * high[b.asset] * mmax
                  for b in v.book.balances if b.asset in high and b.quantity]
        out.append(reduce(add, terms, 0.0) + abs(float(v.loan)) * mmax)
    return out


def _far_cleared(owed: float, coll: float, tol: float, clear: Sequence[tuple[float, float]],
                 shortfall_max: float | None, loan: bool) -> bool:
    """:func:`_far` with its per-client right sides computed once: ``clear`` pairs each threshold
    ``b`` with ``tol × (1 + b)``, ``shortfall_max`` is ``limit − 2 × tol``. Same answer."""
    if not (isfinite(owed) and isfinite(coll)):
        return False
    if shortfall_max is not None and not (owed - coll) < shortfall_max:
        return False
    if not loan:
        return True
    if abs(coll) <= tol:
        return False
    if coll < 0:
        return True
    for b, margin in clear:  # noqa: SIM110 (a plain loop: all() over a generator costs twice as much here)
        if not abs(owed - b * coll) > margin:
            return False
    return True


def _far(owed: float, coll: float, tol: float, thresholds: Sequence[float], limit: float | None, *,
         loan: bool) -> bool:
    """True when the exact stressed figures are certainly on the same side of every threshold as
    these floats (each within ``tol`` USD of its exact value), and the shortfall below ``limit``."""
    if not (isfinite(owed) and isfinite(coll)):
        return False
    if limit is not None and not (owed - coll) < limit - 2 * tol:  # loan − collateral; max(0, ·) ≤ limit
        return False
    if not loan:
        return True  # LTV 0 whatever the prices; every threshold is above 0
    if abs(coll) <= tol:
        return False  # collateral sign (finite LTV or infinite) not certain
    if coll < 0:
        return True  # infinite LTV: above every threshold
    return all(abs(owed - b * coll) > tol * (1 + b) for b in thresholds)


def screen_ltv(bases: Sequence[tuple[ClientValuation, Decimal]], context: ValuationContext, *,
               tolerance: float = SCREEN_TOLERANCE) -> dict[str, float]:
    """The float LTV at ``context``'s prices and parameters of each base valuation's book (its
    netted positions and its balances, as the base valued them) with the paired exact amount owed
    (USD, e.g. ``loan_due`` × the loan asset's liability price at those prices), for the clients
    whose exact LTV is certainly on the same side of every ladder threshold (each band and band −
    hysteresis) as that float: the same grid, margin (``tolerance`` × the client's magnitude) and
    comparisons as :func:`screen_stress`, with the new prices in place of a shock.

    A client missing from the result needs the exact valuation: not plainly screenable
    (:func:`_screenable` on the base: blind, unpriced, gaps, DeFi keeps, an infinite LTV), an
    asset it holds, trades or owes without a price in ``context``, a non-finite amount or float,
    odd parameters, or near a threshold. ``inf`` means the collateral is certainly ≤ 0 with a
    loan. Nothing here is money: the caller decides only that nothing needs deciding. Pure."""
    params = context.params
    thresholds = _thresholds(params)
    if thresholds is None:
        return {}
    priced = context.table.keys()
    vals: list[ClientValuation] = []
    for v, owed in bases:
        if not (_screenable(v) and owed.is_finite()):
            continue
        book = v.book
        assert book is not None
        used = {b.asset for b in book.balances if b.quantity} | {p.underlying for p in book.positions if p.size}
        if book.loan is not None:
            used.add(book.loan.asset)
        if used <= priced:
            vals.append(v.repriced(context, owed))
    if not vals:
        return {}
    # A zero shock naming an asset runs the grid's per-asset path, which values every balance at
    # the context's prices (the uniform path would reuse the base's balance sums): the prices
    # themselves are the move. Every multiplier is then 1.
    (owed_l, coll_l), = stress_grid_parts(grid_inputs(vals), [StressScenario("now", MappingProxyType({UNIT: ZERO}))],
                                          params)
    out: dict[str, float] = {}
    for v, owed_f, coll in zip(vals, owed_l, coll_l, strict=True):
        tol = tolerance * _magnitude(v, 1.0)
        if isfinite(tol) and _far(owed_f, coll, tol, thresholds, None, loan=v.loan != 0):
            out[v.client_id] = (owed_f / coll if coll > 0 else float("inf")) if v.loan != 0 else 0.0
    return out
