"""Value one client across every venue: collateral, loan, LTV, delta, leverage, concentration.

Conventions (docs/risk.md has worked examples):

- **Balances** are whole-unit holdings per account (CEX wallet/margin balances, dYdX quote
  balance, on-chain wallet tokens). ``quantity`` is the total, ``locked`` included. They must
  *exclude* unrealized PnL: the Binance futures *wallet* balance (not margin balance), the dYdX
  quote balance as the indexer reports it (equity − Σ position value), so each unit is counted once.
  A negative balance (borrowed on a margin account) is a liability.
- **Positions** contribute their unrealized PnL, recomputed at our price (the venue's own
  ``unrealized_pnl`` field is not used: it is priced at the venue's mark). Positions are netted
  per underlying across the client's accounts: ``PnL_u = (Σ size) × price − Σ size × entry``.
  The PB can close every leg of a hedged book at once, so a cross-venue hedge does not drift
  with the price; what one venue could do to one leg first is watched by the near-liquidation
  findings and the venue-dark stress.
- **Conservative prices**: a holding (positive balance, net-long underlying) uses the collateral
  price, an amount owed (negative balance, net-short underlying, the loan) the liability price;
  they differ only when sources disagree (see :mod:`primeguard.risk.pricing`). Exposure metrics
  (net delta, notional, leverage) use the reference price: they measure size, not value.
- **Equity** = Σ balance values + Σ PnL_u (gross, no haircut). **Haircut-adjusted collateral**
  = Σ positive balance values × (1 − haircut) + Σ negative balance values + Σ PnL_u, where a
  positive PnL_u is haircut like its underlying and a negative one counts in full.
- **Loan** = (principal + accrued interest) × the liability price of the loan asset (USD: 1).
  **LTV** = loan / haircut-adjusted collateral; no loan → 0; collateral ≤ 0 with a loan → infinite
  (``Decimal('Infinity')``, never a division error). **Coverage** = collateral / loan = 1 / LTV.
- **Blind**: an account could not be read, or something held or owed has no fresh price. The
  metrics then cover only what could be seen and priced; withdrawals are denied and the ladder
  does not move down. The daemon alerts on the ``BLIND_SPOT`` / ``PRICE_MISSING`` findings.

Speed: the per-position loop is the hot path of a sweep (10,000 clients × 50 positions). It only
sums per underlying and compares liquidation prices with trigger prices derived once per asset
(:class:`ValuationContext`); every price is applied once per underlying. Views nothing decides
on (per-position liquidation distances, the per-venue split) are computed when first asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from types import MappingProxyType
from typing import Any, NamedTuple, cast

from primeguard.domain.findings import Finding, FindingCode, Severity
from primeguard.domain.model import Balance, Client, Loan, Position
from primeguard.domain.observation import DataGap
from primeguard.domain.rawjson import RawJSON, encode_basestring_ascii, json_list
from primeguard.risk.interest import InterestTerms, accrued_interest, loan_state
from primeguard.risk.params import RiskParameters
from primeguard.risk.pricing import UNIT, PriceBook, PricePick, dec_str

INFINITE = Decimal("Infinity")
ZERO = Decimal(0)
ONE = Decimal(1)
UNKNOWN_VENUE = "unknown"


@dataclass(frozen=True, slots=True)
class ClientBook:
    """Everything seen of one client in one sweep.

    ``blind_accounts`` lists accounts whose data is missing or stale this sweep (their balances
    are absent, never zero); ``gaps`` what else is missing: an account read only in part (a dYdX
    node down, a key not inspected), a configured account with no snapshot, an oracle feed for an
    asset the client holds or owes that gave no valid round. Either makes the client blind.
    ``account_venues`` maps account id → venue label ("binance",
    "dydx", "evm:ethereum"); it groups collateral per venue for the venue-dark stress. A position
    on an account without a label uses its ``venue`` field; a balance, ``"unknown"``.
    """

    client: Client
    loan: Loan | None
    balances: tuple[Balance, ...]
    positions: tuple[Position, ...]
    blind_accounts: tuple[str, ...] = ()
    account_venues: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    peak_equity: Decimal | None = None
    interest: InterestTerms | None = None
    gaps: tuple[DataGap, ...] = ()
    # account id -> (1 − haircut) for that account's holdings, replacing the asset's: a DeFi
    # position's haircut class (0 when the policy does not know the class: not collateral).
    account_keep: Mapping[str, Decimal] = field(default_factory=lambda: MappingProxyType({}))

    def venue_of(self, account_id: str) -> str:
        return self.account_venues.get(account_id, UNKNOWN_VENUE)

    def keep(self, account_id: str, asset_keep: Decimal) -> Decimal:
        """(1 − haircut) for a holding on ``account_id``: its class's override, else the asset's."""
        return self.account_keep.get(account_id, asset_keep) if self.account_keep else asset_keep

    def venue_of_position(self, p: Position) -> str:
        return self.account_venues.get(p.account_id) or p.venue.value


class AssetTerms(NamedTuple):
    """Everything the hot loop needs about one asset, derived once per context."""

    low: Decimal  # collateral price
    high: Decimal  # liability price
    ref: Decimal  # reference price
    keep: Decimal  # 1 − haircut
    stable: bool
    low_liquidity: bool
    long_trigger: Decimal  # a long whose liquidation price is at or above this is near liquidation
    short_trigger: Decimal  # a short whose liquidation price is at or below this is near liquidation


class ValuationContext:
    """Prices and parameters folded per asset, shared by every client valued with them."""

    __slots__ = ("_price_json", "_price_raw", "params", "price_findings", "prices", "table")

    def __init__(self, prices: PriceBook, params: RiskParameters) -> None:
        self.prices = prices
        self.params = params
        near = params.near_liquidation
        rows = [(a, p.collateral, p.liability, p.reference) for a, p in prices.picks.items()]
        rows.append((UNIT, ONE, ONE, ONE))
        self.table: dict[str, AssetTerms] = {
            a: AssetTerms(low, high, ref, ONE - params.haircut(a), a in params.stablecoins,
                          a in params.low_liquidity_assets, low * (ONE - near), high * (ONE + near))
            for a, low, high, ref in rows}
        # Book-wide price findings each holder shares; PRICE_MISSING is restated per client.
        self.price_findings: dict[str, tuple[Finding, ...]] = {
            a: kept for a, fs in prices.findings_by_asset.items()
            if (kept := tuple(f for f in fs if f.code != FindingCode.PRICE_MISSING))}
        self._price_json: dict[str, dict[str, Any]] = {}
        self._price_raw: dict[str, RawJSON | dict[str, Any]] = {}

    def price_json(self, asset: str) -> dict[str, Any]:
        """The JSON of the asset's :class:`PricePick` (``picks[asset].to_json_dict()``), built once
        per context and shared by every client's valuation JSON: treat it as read-only."""
        got = self._price_json.get(asset)
        if got is None:
            got = self._price_json[asset] = self.prices.picks[asset].to_json_dict()
        return got

    def price_raw(self, asset: str) -> RawJSON | dict[str, Any]:
        """:meth:`price_json` rendered once as text (:class:`~primeguard.domain.rawjson.RawJSON`),
        or that dict itself when it is not plain JSON types only."""
        got = self._price_raw.get(asset)
        if got is None:
            doc = self.price_json(asset)
            got = self._price_raw[asset] = RawJSON.dump(doc) or doc
        return got

    def terms(self, asset: str) -> AssetTerms | None:
        """The asset's prices and factors; None when it has no fresh price."""
        return self.table.get(asset)


class Underlying(NamedTuple):
    """A client's positions in one underlying, netted across its accounts (exact sums)."""

    asset: str
    net: Decimal  # Σ size
    cost: Decimal  # Σ size × entry
    price: Decimal  # conservative price for the net side

    @property
    def value(self) -> Decimal:
        return self.net * self.price

    @property
    def pnl(self) -> Decimal:
        return self.value - self.cost


@dataclass(frozen=True, slots=True)
class PositionRisk:
    """One venue position at our prices. ``liquidation_distance`` = how far the price can move
    against the position before the venue's liquidation price, as a fraction of the price."""

    account_id: str
    venue: str
    instrument: str
    underlying: str
    size: Decimal
    price: Decimal
    notional: Decimal
    pnl: Decimal
    liquidation_price: Decimal | None
    liquidation_distance: Decimal | None

    def to_json_dict(self) -> dict[str, Any]:
        return {"account": self.account_id, "venue": self.venue, "instrument": self.instrument,
                "underlying": self.underlying, "size": dec_str(self.size), "price": dec_str(self.price),
                "notional": dec_str(self.notional), "pnl": dec_str(self.pnl),
                "liquidation_price": dec_str(self.liquidation_price),
                "liquidation_distance": dec_str(self.liquidation_distance)}

    def json_text(self) -> str | None:
        """The text ``json.dumps`` writes for :meth:`to_json_dict`, rendered directly (no dict);
        None when an identifier is not exactly a ``str`` or an amount is missing (then use
        :meth:`to_json_dict`)."""
        a, v, i, u = self.account_id, self.venue, self.instrument, self.underlying
        if type(a) is not str or type(v) is not str or type(i) is not str or type(u) is not str:
            return None
        if self.size is None or self.price is None or self.notional is None or self.pnl is None:
            return None
        d = dec_str  # its text (digits, "-", ".", "inf") needs no escaping inside the quotes
        lp, ld = self.liquidation_price, self.liquidation_distance
        lps = "null" if lp is None else '"' + cast(str, d(lp)) + '"'
        lds = "null" if ld is None else '"' + cast(str, d(ld)) + '"'
        e = encode_basestring_ascii  # what json.dumps writes for a str
        return (f'{{"account": {e(a)}, "venue": {e(v)}, "instrument": {e(i)}, "underlying": {e(u)}, '
                f'"size": "{d(self.size)}", "price": "{d(self.price)}", "notional": "{d(self.notional)}", '
                f'"pnl": "{d(self.pnl)}", "liquidation_price": {lps}, "liquidation_distance": {lds}}}')


def liquidation_distance(size: Decimal, price: Decimal, liquidation_price: Decimal | None) -> Decimal | None:
    """Fraction the price may move against the position before liquidation; 0 if already past."""
    if liquidation_price is None or price <= 0 or size == 0:
        return None
    gap = (price - liquidation_price) if size > 0 else (liquidation_price - price)
    return max(ZERO, gap / price)


@dataclass(frozen=True)
class ClientValuation:
    """All metrics of one client at ``as_of``; Decimals throughout (see the module docstring)."""

    client_id: str
    tier: str
    gross_collateral: Decimal  # Σ balance values
    haircut_collateral: Decimal  # what LTV divides by
    unrealized_pnl: Decimal
    equity: Decimal  # gross collateral + PnL: the accounts' value, loan money included
    loan: Decimal  # USD owed: (principal + interest) × loan asset price
    accrued_interest: Decimal  # in the loan asset
    ltv: Decimal | None  # 0 without a loan; INFINITE when collateral ≤ 0 with one
    coverage: Decimal | None  # haircut collateral / loan; None without a loan
    net_delta_ratio: Decimal | None  # Σ |net delta| / equity
    gross_notional: Decimal  # Σ position notional
    leverage: Decimal | None  # gross exposure / equity; INFINITE with exposure and equity ≤ 0
    concentration: Decimal | None  # largest non-stable asset value / gross collateral
    low_liquidity_share: Decimal | None  # low-liquidity exposure / equity
    drawdown: Decimal | None  # 1 − equity / peak equity
    findings: tuple[Finding, ...]
    blind: bool
    as_of: datetime | None = None
    principal: Decimal = ZERO  # outstanding at ``as_of`` (after draws and repayments)
    loan_asset: str | None = None
    loan_rate: Decimal | None = None  # annual rate in force at ``as_of``
    loan_to_collateral: Decimal | None = None  # loan / net equity (own collateral); 0 without a loan
    gross_leverage: Decimal | None = None  # gross exposure / net equity
    net_equity: Decimal = ZERO  # equity − loan: the client's own money, the PB's cushion
    net_delta_qty: Mapping[str, Decimal] = field(default_factory=lambda: MappingProxyType({}))
    gross_exposure: Decimal = ZERO  # position notional + |non-stable balance values|
    low_liquidity_exposure: Decimal = ZERO
    concentration_asset: str | None = None
    balance_values: Mapping[str, Decimal] = field(default_factory=lambda: MappingProxyType({}))  # asset -> USD
    stable_collateral: Decimal = ZERO  # haircut value of stablecoin balances
    risky_collateral: Decimal = ZERO  # haircut value of every other balance (negative ones in full)
    stable_notional: Decimal = ZERO  # the part of gross_notional in stablecoin underlyings
    underlyings: tuple[Underlying, ...] = ()
    blind_accounts: tuple[str, ...] = ()
    unpriced: tuple[str, ...] = ()
    gaps: tuple[DataGap, ...] = ()
    book: ClientBook | None = field(default=None, repr=False, compare=False)
    context: ValuationContext | None = field(default=None, repr=False, compare=False)

    @classmethod
    def _build(cls, **fields: Any) -> ClientValuation:
        """Construct without the frozen ``__init__``'s per-field ``object.__setattr__`` (a third
        of a client's valuation time at 10,000 clients). Every field must be given: a unit test
        checks the names against :func:`dataclasses.fields`."""
        obj = object.__new__(cls)
        obj.__dict__.update(fields)
        return obj

    def repriced(self, context: ValuationContext, loan: Decimal) -> ClientValuation:
        """``dataclasses.replace(self, context=context, loan=loan)`` without the frozen ``__init__``
        (the oracle fast path's ladder screen makes one per holder per log): the fields only, so no
        derived view already computed on ``self`` (positions, prices used) comes along."""
        values = {name: self.__dict__[name] for name in _FIELD_NAMES}
        values["context"], values["loan"] = context, loan
        return ClientValuation._build(**values)

    @cached_property
    def net_delta(self) -> Mapping[str, Decimal]:
        """Underlying → net delta in USD at the reference price (stablecoins left out)."""
        if self.context is None:
            return MappingProxyType({})
        table = self.context.table
        return MappingProxyType({u: q * table[u].ref for u, q in self.net_delta_qty.items()})

    @cached_property
    def prices_used(self) -> Mapping[str, PricePick]:
        """Asset → the price used and its provenance (sources, age, deviation), for everything
        the client holds or owes."""
        if self.context is None:
            return MappingProxyType({})
        held = set(self.balance_values) | {u.asset for u in self.underlyings}
        if self.loan_asset is not None:
            held.add(self.loan_asset)
        picks = self.context.prices.picks
        return MappingProxyType({a: picks[a] for a in sorted(held) if a in picks})

    @cached_property
    def positions(self) -> tuple[PositionRisk, ...]:
        """Per venue position: notional, PnL and distance to liquidation at our prices.

        Each position is priced on its own side (long: collateral price, short: liability price).
        """
        if self.book is None or self.context is None:
            return ()
        out: list[PositionRisk] = []
        table = self.context.table
        for p in self.book.positions:
            t = table.get(p.underlying)
            if t is None or p.size == 0:
                continue
            price = t.low if p.size > 0 else t.high
            out.append(PositionRisk(p.account_id, self.book.venue_of_position(p), p.instrument, p.underlying,
                                    p.size, price, abs(p.size) * t.ref, p.size * (price - p.entry_price),
                                    p.liquidation_price, liquidation_distance(p.size, price, p.liquidation_price)))
        return tuple(out)

    @property
    def min_liquidation_distance(self) -> Decimal | None:
        ds = [p.liquidation_distance for p in self.positions if p.liquidation_distance is not None]
        return min(ds) if ds else None

    @cached_property
    def _venue_split(self) -> tuple[Mapping[str, Decimal], Mapping[str, Decimal]]:
        if self.book is None or self.context is None:
            return MappingProxyType({}), MappingProxyType({})
        book, tget = self.book, self.context.table.get
        # book.venue_of / keep / venue_of_position, inlined: this runs per balance and position.
        venues, account_keep = book.account_venues, book.account_keep
        price = {u.asset: u.price for u in self.underlyings}
        value: dict[str, Decimal] = {}
        haircut: dict[str, Decimal] = {}
        for b in book.balances:
            q = b.quantity
            t = tget(b.asset)
            if t is not None and q:
                v = venues.get(b.account_id, UNKNOWN_VENUE)
                x = q * (t.low if q > 0 else t.high)
                value[v] = value.get(v, ZERO) + x
                if x > 0:
                    x *= account_keep.get(b.account_id, t.keep) if account_keep else t.keep
                haircut[v] = haircut.get(v, ZERO) + x
        legs: dict[tuple[str, str], Decimal] = {}
        for p in book.positions:
            px = price.get(p.underlying)
            if px is not None and p.size:
                key = (venues.get(p.account_id) or p.venue.value, p.underlying)
                legs[key] = legs.get(key, ZERO) + p.size * (px - p.entry_price)
        table = self.context.table
        for (v, u), pnl in legs.items():
            value[v] = value.get(v, ZERO) + pnl
            haircut[v] = haircut.get(v, ZERO) + (pnl * table[u].keep if pnl > 0 else pnl)
        return MappingProxyType(value), MappingProxyType(haircut)

    @property
    def by_venue(self) -> Mapping[str, Decimal]:
        """Venue → its balances + the PnL of the positions held there (each underlying at the
        price used for the client's net side). Sums to :attr:`equity`."""
        return self._venue_split[0]

    @property
    def by_venue_haircut(self) -> Mapping[str, Decimal]:
        """Venue → what it counts for on its own after haircuts (its PnL per underlying haircut
        separately). Does not sum to :attr:`haircut_collateral`, which nets PnL across venues."""
        return self._venue_split[1]

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready dict; Decimals as exact strings ("inf" for an infinite LTV)."""
        return self._json_dict(raw=False)

    def to_store_json(self) -> dict[str, Any]:
        """:meth:`to_json_dict` with its two bulky parts rendered as text: ``positions`` is one
        :class:`~primeguard.domain.rawjson.RawJSON` (the list) and each entry of ``prices`` one (the
        context's, shared by every client). ``json.dumps`` of :meth:`to_json_dict` and the store's
        serialiser of this write the same text."""
        return self._json_dict(raw=True)

    def _json_dict(self, *, raw: bool) -> dict[str, Any]:
        s = dec_str
        return {
            "client": self.client_id, "tier": self.tier,
            "as_of": None if self.as_of is None else self.as_of.isoformat(),
            "blind": self.blind, "blind_accounts": list(self.blind_accounts), "unpriced": list(self.unpriced),
            "gaps": [{"venue": g.venue, "subject": g.subject, "missing": g.missing, "cause": g.cause.value}
                     for g in self.gaps],
            "loan": {"asset": self.loan_asset, "principal": s(self.principal),
                     "accrued_interest": s(self.accrued_interest), "owed_usd": s(self.loan),
                     "rate": s(self.loan_rate)},
            "metrics": {
                "gross_collateral": s(self.gross_collateral), "haircut_collateral": s(self.haircut_collateral),
                "stable_collateral": s(self.stable_collateral), "risky_collateral": s(self.risky_collateral),
                "unrealized_pnl": s(self.unrealized_pnl), "equity": s(self.equity),
                "net_equity": s(self.net_equity), "ltv": s(self.ltv), "coverage": s(self.coverage),
                "loan_to_collateral": s(self.loan_to_collateral), "gross_leverage": s(self.gross_leverage),
                "gross_notional": s(self.gross_notional), "gross_exposure": s(self.gross_exposure),
                "leverage": s(self.leverage), "net_delta_ratio": s(self.net_delta_ratio),
                "concentration": s(self.concentration), "concentration_asset": self.concentration_asset,
                "low_liquidity_exposure": s(self.low_liquidity_exposure),
                "low_liquidity_share": s(self.low_liquidity_share), "drawdown": s(self.drawdown),
                "min_liquidation_distance": s(self.min_liquidation_distance),
            },
            "net_delta": {u: {"qty": s(self.net_delta_qty.get(u, ZERO)), "usd": s(v)}
                          for u, v in sorted(self.net_delta.items())},
            "by_venue": {v: {"value": s(x), "haircut_value": s(self.by_venue_haircut.get(v, ZERO))}
                         for v, x in sorted(self.by_venue.items())},
            "positions": self._positions_raw() if raw else [p.to_json_dict() for p in self.positions],
            "prices": {a: (self.context.price_raw(a) if raw else self.context.price_json(a))
                       if self.context is not None else p.to_json_dict()
                       for a, p in sorted(self.prices_used.items())},
            "findings": [finding_json(f) for f in self.findings],
        }

    def _positions_raw(self) -> RawJSON | list[dict[str, Any]]:
        texts = [p.json_text() for p in self.positions]
        if None in texts:
            return [p.to_json_dict() for p in self.positions]
        return json_list(cast(list[str], texts))

    def to_json(self) -> dict[str, Any]:
        """First-version name of :meth:`to_json_dict`."""
        return self.to_json_dict()


def finding_json(f: Finding) -> dict[str, Any]:
    """A finding in a valuation's JSON: :meth:`Finding.to_json` (``primeguard.finding/1``). Pure."""
    return f.to_json()



_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in fields(ClientValuation))

def loan_due(book: ClientBook, now: datetime) -> tuple[Decimal, Decimal, Decimal | None]:
    """The client's loan at ``now`` in the loan asset (exact): (outstanding principal, accrued
    interest, annual rate in force); zeros and None without a loan. What :func:`valuate` multiplies
    by the loan asset's liability price."""
    loan = book.loan
    if loan is None:
        return ZERO, ZERO, None
    if loan.events or book.interest is not None:
        st = loan_state(loan, now, book.interest)
        return st.principal, st.interest, st.rate
    # the common case, fast
    return (loan.principal if now >= loan.start else ZERO), accrued_interest(loan, now), loan.annual_rate


def valuate(book: ClientBook, prices: PriceBook, params: RiskParameters, now: datetime,
            *, tier: str | None = None, context: ValuationContext | None = None) -> ClientValuation:
    """Value one client. Pure: same inputs, same result; ``now`` drives interest accrual.

    Args:
        book: the client's balances, positions, loan and blind accounts.
        prices: the sweep's price book (:func:`primeguard.risk.pricing.select_prices`).
        params: the client's tier parameters.
        now: the valuation instant.
        tier: label for reports; defaults to ``book.client.tier``.
        context: a :class:`ValuationContext` built from the same ``prices`` and ``params``, to
            share the per-asset work between clients (``revalue_book`` does this).
    """
    ctx = context if context is not None and context.prices is prices and context.params is params \
        else ValuationContext(prices, params)
    tget = ctx.table.get
    cid = book.client.id
    unpriced: set[str] = set()

    # --- positions: one pass, exact sums per underlying --------------------------------------
    # sums[u] = [Σ size, Σ |size|, Σ size × entry, highest long liq. price, lowest short liq. price]
    sums: dict[str, list[Any]] = {}
    for p in book.positions:
        s = p.size
        if not s:
            continue
        lq = p.liquidation_price
        g = sums.get(p.underlying)
        if g is None:
            sums[p.underlying] = [s, abs(s), s * p.entry_price, lq if s > 0 else None, lq if s < 0 else None]
        else:
            g[0] += s
            g[1] += abs(s)
            g[2] += s * p.entry_price
            if lq is not None:
                if s > 0:
                    if g[3] is None or lq > g[3]:
                        g[3] = lq
                elif g[4] is None or lq < g[4]:
                    g[4] = lq

    pnl_total = haircut = notional_total = low_liq = stable_notional = ZERO
    delta_qty: dict[str, Decimal] = {}
    rows: list[Underlying] = []
    near_assets: list[str] = []
    new_row = tuple.__new__  # what Underlying(...) does, minus a Python-level call per row
    for u, (net, gross, cost, long_liq, short_liq) in sums.items():
        t = tget(u)
        if t is None:
            unpriced.add(u)
            continue
        price = t.low if net > 0 else t.high
        value = net * price
        pnl = value - cost
        hc = pnl if pnl < 0 else pnl * t.keep
        pnl_total += pnl
        haircut += hc
        notional = gross * t.ref
        notional_total += notional
        if t.low_liquidity:
            low_liq += notional
        if t.stable:
            stable_notional += notional
        else:
            delta_qty[u] = net
        rows.append(new_row(Underlying, (u, net, cost, price)))
        if (long_liq is not None and long_liq >= t.long_trigger) or \
                (short_liq is not None and short_liq <= t.short_trigger):
            near_assets.append(u)

    # --- balances: few per client --------------------------------------------------------
    gross_coll = spot_exposure = stable_hc = risky_hc = ZERO
    account_keep, keep_of = book.account_keep, book.keep
    per_asset: dict[str, Decimal] = {}
    for b in book.balances:
        q = b.quantity
        if not q:
            continue
        t = tget(b.asset)
        if t is None:
            unpriced.add(b.asset)
            continue
        value = q * (t.low if q > 0 else t.high)
        gross_coll += value
        hc = value * (keep_of(b.account_id, t.keep) if account_keep else t.keep) if q > 0 else value
        per_asset[b.asset] = per_asset.get(b.asset, ZERO) + value
        if t.stable:
            stable_hc += hc
        else:
            risky_hc += hc
            delta_qty[b.asset] = delta_qty.get(b.asset, ZERO) + q
            spot_exposure += abs(value)
            if t.low_liquidity:
                low_liq += abs(value)

    haircut += stable_hc + risky_hc

    # --- loan -------------------------------------------------------------------------------
    loan = book.loan
    owed = ZERO
    outstanding, interest, loan_rate = loan_due(book, now)
    if loan is not None:
        lt = tget(loan.asset)
        if lt is None:
            unpriced.add(loan.asset)
        else:
            owed = (outstanding + interest) * lt.high

    # --- ratios -----------------------------------------------------------------------------
    equity = gross_coll + pnl_total
    if owed == 0:
        ltv: Decimal | None = ZERO
        coverage: Decimal | None = None if loan is None else INFINITE
    elif haircut <= 0:
        ltv, coverage = INFINITE, ZERO
    else:
        ltv, coverage = owed / haircut, haircut / owed
    table = ctx.table
    exposure = notional_total + spot_exposure
    if equity > 0:
        net_ratio: Decimal | None = sum([abs(q * table[u].ref) for u, q in delta_qty.items()], ZERO) / equity
        leverage: Decimal | None = exposure / equity
        low_share: Decimal | None = low_liq / equity
    else:
        net_ratio = INFINITE if any(delta_qty.values()) else None
        leverage = INFINITE if exposure else None
        low_share = INFINITE if low_liq else None
    stable = params.stablecoins
    risky = [(v, a) for a, v in per_asset.items() if v > 0 and a not in stable]
    conc_value, conc_asset = max(risky) if risky else (ZERO, None)
    concentration = conc_value / gross_coll if risky and gross_coll > 0 else None
    net = equity - owed
    if owed == 0:
        loan_to_coll: Decimal | None = ZERO
    else:
        loan_to_coll = owed / net if net > 0 else INFINITE
    if net > 0:
        gross_lev: Decimal | None = exposure / net
    else:
        gross_lev = INFINITE if exposure else None
    drawdown: Decimal | None = None
    if book.peak_equity is not None and book.peak_equity > 0:
        drawdown = max(ZERO, ONE - equity / book.peak_equity)

    # --- findings ---------------------------------------------------------------------------
    findings: list[Finding] = []
    for acct in book.blind_accounts:
        findings.append(Finding(FindingCode.BLIND_SPOT, Severity.CRITICAL, acct,
                                f"{cid}: account {acct} could not be read; withdrawals are denied",
                                venue=book.account_venues.get(acct, ""), client_id=cid,
                                details={"account": acct, "missing": "balances and positions"}))
    for gap in book.gaps:
        findings.append(Finding(FindingCode.BLIND_SPOT, Severity.CRITICAL, f"{cid}:{gap.venue}:{gap.subject}",
                                f"{cid}: {gap.venue} {gap.subject}: {gap.missing}; withdrawals are denied",
                                venue=gap.venue, client_id=cid,
                                details={"account": gap.subject, "missing": gap.missing, "cause": gap.cause.value}))
    for asset in sorted(unpriced):
        findings.append(Finding(FindingCode.PRICE_MISSING, Severity.CRITICAL, f"{cid}:{asset}",
                                f"{cid} holds or owes {asset} but no fresh price exists for it: client is blind",
                                client_id=cid, details={"asset": asset}))
    pf = ctx.price_findings
    if pf:
        # The book-wide price findings about what this client holds, shared (not copied): same key.
        flagged = (sums.keys() | per_asset.keys()) & pf.keys()
        if loan is not None and loan.asset in pf:
            flagged.add(loan.asset)
        for a in sorted(flagged):
            findings.extend(pf[a])
    if near_assets:  # rare: find the positions themselves
        for p in book.positions:
            if p.underlying in near_assets and p.liquidation_price is not None and p.size:
                t = ctx.table[p.underlying]
                if p.liquidation_price >= t.long_trigger if p.size > 0 else p.liquidation_price <= t.short_trigger:
                    findings.append(_near_finding(cid, book, p, ctx, params))
    checks: tuple[tuple[Decimal | None, Decimal | None, FindingCode, str], ...] = (
        (params.max_leverage, leverage, FindingCode.LEVERAGE_EXCEEDED, "gross leverage"),
        (params.max_net_delta_ratio, net_ratio, FindingCode.NET_DELTA_EXCEEDED, "|net delta| / equity"),
        (params.max_drawdown, drawdown, FindingCode.DRAWDOWN_EXCEEDED, "drawdown from peak equity"),
        (params.max_concentration, concentration, FindingCode.CONCENTRATION_EXCEEDED, "share of collateral in"),
        (params.max_low_liquidity_share, low_share, FindingCode.LOW_LIQUIDITY_EXPOSURE,
         "low-liquidity exposure / equity"),
        (params.max_loan_to_collateral, loan_to_coll, FindingCode.FINANCING_CAP_EXCEEDED,
         "loan / own collateral"),
        (params.max_gross_leverage, gross_lev, FindingCode.LEVERAGE_EXCEEDED, "gross exposure / own collateral"),
    )
    for limit, metric, code, what in checks:
        if limit is not None and metric is not None and metric > limit:
            label = f"{what} {conc_asset}" if code == FindingCode.CONCENTRATION_EXCEEDED else what
            findings.append(Finding(code, Severity.HIGH, cid, f"{cid}: {label} {_fmt(metric)} above limit {limit}",
                                    client_id=cid, details={"value": dec_str(metric), "limit": dec_str(limit)}))

    return ClientValuation._build(
        client_id=cid, tier=tier if tier is not None else book.client.tier, gross_collateral=gross_coll,
        haircut_collateral=haircut, unrealized_pnl=pnl_total, equity=equity, loan=owed, accrued_interest=interest,
        ltv=ltv, coverage=coverage, net_delta_ratio=net_ratio,
        gross_notional=notional_total, leverage=leverage, concentration=concentration, low_liquidity_share=low_share,
        drawdown=drawdown, findings=tuple(findings), blind=bool(book.blind_accounts or book.gaps or unpriced),
        as_of=now, principal=outstanding, loan_asset=loan.asset if loan else None, loan_rate=loan_rate,
        loan_to_collateral=loan_to_coll, gross_leverage=gross_lev, net_equity=net,
        net_delta_qty=MappingProxyType(delta_qty), gross_exposure=exposure,
        low_liquidity_exposure=low_liq, concentration_asset=conc_asset, balance_values=MappingProxyType(per_asset),
        stable_collateral=stable_hc, risky_collateral=risky_hc, stable_notional=stable_notional,
        underlyings=tuple(rows), blind_accounts=tuple(book.blind_accounts), unpriced=tuple(sorted(unpriced)),
        gaps=tuple(book.gaps), book=book, context=ctx)


def _near_finding(cid: str, book: ClientBook, p: Position, ctx: ValuationContext,
                  params: RiskParameters) -> Finding:
    t = ctx.table[p.underlying]
    price = t.low if p.size > 0 else t.high
    dist = liquidation_distance(p.size, price, p.liquidation_price)
    venue = book.venue_of_position(p)
    return Finding(FindingCode.NEAR_LIQUIDATION, Severity.HIGH, f"{p.account_id}:{p.instrument}",
                   f"{cid}: {p.instrument} on {venue} is {_pct(dist)} from its liquidation price "
                   f"{p.liquidation_price} (limit {params.near_liquidation:.0%})", venue=venue, client_id=cid,
                   details={"distance": dec_str(dist), "price": dec_str(price),
                            "liquidation_price": dec_str(p.liquidation_price)})


def _pct(x: Decimal | None) -> str:
    return "?" if x is None else f"{x:.2%}"


def _fmt(x: Decimal) -> str:
    return "infinite" if not x.is_finite() else f"{x:.4f}"
