"""Choose one USD price per asset from several sources, conservatively.

Rules (docs/risk.md, "Prices"):

- A quote is *fresh* when its price is positive and its age (now − the source's own timestamp)
  is within the budget: the feed's heartbeat (``max_age_s`` by ``source_id``), else the budget of
  its source kind (``max_age_by_source`` / ``params.price_max_age_by_source``), else
  ``params.price_max_age_s``. A stale or non-positive quote yields a finding and is ignored.
- The *reference* price comes from the fresh quote whose kind ranks first in
  ``params.price_source_priority`` (ties: the newest). Kinds outside the priority list (e.g.
  ``FIXED`` pegs) only cross-check: they can widen the range, never be the only price.
- All fresh quotes are cross-checked: when ``(max − min) / min`` exceeds
  ``params.oracle_max_deviation`` a ``PRICE_DEVIATION`` finding is raised and collateral is
  valued at the lowest fresh price, liabilities (shorts, borrowed balances, the loan) at the
  highest. Within the threshold both use the reference price.
- No fresh priority source → the asset is missing: its holders are blind (never valued at zero
  or at a stale price). ``USD`` is the unit of account and is always 1.
- Stablecoins are priced from quotes like any other asset: a depeg shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from primeguard.domain.findings import Finding, FindingCode, Severity
from primeguard.domain.model import PriceQuote, PriceSourceKind
from primeguard.risk.params import RiskParameters

UNIT = "USD"  # the unit of account: every price is USD per unit of the asset
ONE = Decimal(1)
_ORACLE_KINDS = frozenset({PriceSourceKind.ORACLE, PriceSourceKind.DYDX_ORACLE})


def exact_seconds(delta: timedelta) -> Decimal:
    """A timedelta in seconds as an exact Decimal (``total_seconds()`` goes through float)."""
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds).scaleb(-6)


def dec_str(value: Decimal | None) -> str | None:
    """JSON text for a Decimal: exact, no exponent, no trailing zeros; ``inf`` for infinity."""
    if value is None:
        return None
    if value.is_finite():
        # a finite Decimal is true unless zero (as ``value == 0``, without the comparison's cost)
        return format(value.normalize(), "f") if value else "0"
    return "inf" if value > 0 else "-inf"


@dataclass(frozen=True, slots=True)
class SourceUse:
    """One quote that was considered for an asset, fresh or not."""

    source: PriceSourceKind
    source_id: str
    price: Decimal
    age_s: Decimal
    max_age_s: int
    fresh: bool

    def to_json_dict(self) -> dict[str, Any]:
        return {"source": self.source.value, "source_id": self.source_id, "price": dec_str(self.price),
                "age_s": dec_str(self.age_s), "max_age_s": self.max_age_s, "fresh": self.fresh}


@dataclass(frozen=True, slots=True)
class PricePick:
    """The prices used for one asset: lower bound for collateral, upper bound for liabilities.

    ``reference`` (the top-priority fresh source) is used where no side is taken: net delta.
    """

    asset: str
    collateral: Decimal
    liability: Decimal
    source: str  # kind of the reference quote
    source_id: str
    age_s: Decimal  # age of the reference quote
    deviation: Decimal  # (max − min) / min over fresh sources; 0 with one source
    reference: Decimal = Decimal(0)
    collateral_source_id: str = ""
    liability_source_id: str = ""
    sources: tuple[SourceUse, ...] = ()

    @property
    def deviated(self) -> bool:
        return self.collateral != self.liability

    def to_json_dict(self) -> dict[str, Any]:
        return {"asset": self.asset, "collateral": dec_str(self.collateral), "liability": dec_str(self.liability),
                "reference": dec_str(self.reference), "source": self.source, "source_id": self.source_id,
                "age_s": dec_str(self.age_s), "deviation": dec_str(self.deviation),
                "collateral_source_id": self.collateral_source_id, "liability_source_id": self.liability_source_id,
                "sources": [s.to_json_dict() for s in self.sources]}

    to_json = to_json_dict


@dataclass(frozen=True, slots=True)
class PriceBook:
    """The chosen prices of one sweep, with the findings that choosing them produced."""

    picks: Mapping[str, PricePick] = field(default_factory=lambda: MappingProxyType({}))
    findings: tuple[Finding, ...] = ()
    missing: frozenset[str] = frozenset()
    as_of: datetime | None = None
    findings_by_asset: Mapping[str, tuple[Finding, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def collateral(self, asset: str) -> Decimal | None:
        """Price to value a holding of ``asset`` (the lowest fresh price when sources disagree)."""
        if asset == UNIT:
            return ONE
        p = self.picks.get(asset)
        return None if p is None else p.collateral

    def liability(self, asset: str) -> Decimal | None:
        """Price to value an amount of ``asset`` owed (the highest fresh price when sources disagree)."""
        if asset == UNIT:
            return ONE
        p = self.picks.get(asset)
        return None if p is None else p.liability

    def reference(self, asset: str) -> Decimal | None:
        if asset == UNIT:
            return ONE
        p = self.picks.get(asset)
        return None if p is None else p.reference

    def findings_for(self, assets: Iterable[str]) -> tuple[Finding, ...]:
        """Findings about the prices of ``assets`` (deviation, staleness, missing)."""
        if not self.findings_by_asset:
            return ()
        out: list[Finding] = []
        for a in assets:
            out.extend(self.findings_by_asset.get(a, ()))
        return tuple(out)

    def to_json_dict(self) -> dict[str, Any]:
        return {"as_of": None if self.as_of is None else self.as_of.isoformat(),
                "prices": {a: p.to_json_dict() for a, p in sorted(self.picks.items())},
                "missing": sorted(self.missing)}


def select_prices(quotes: Iterable[PriceQuote], now: datetime, params: RiskParameters,
                  *, wanted: Iterable[str] = (), max_age_s: Mapping[str, int] | None = None,
                  max_age_by_source: Mapping[PriceSourceKind, int] | None = None) -> PriceBook:
    """Pick prices for every quoted asset and report ``wanted`` assets that have none.

    Args:
        quotes: every quote seen this sweep, any order; repeated quotes of one ``source_id`` keep
            the newest.
        now: the sweep's clock (never read from the wall clock here).
        params: deviation threshold, source priority and default freshness budget.
        wanted: assets somebody holds or owes; those without a fresh price get ``PRICE_MISSING``.
        max_age_s: freshness budget per ``source_id`` (e.g. an oracle's heartbeat).
        max_age_by_source: freshness budget per source kind; overrides the params' mapping.

    Returns:
        A :class:`PriceBook` with one :class:`PricePick` per priceable asset.
    """
    by_id = max_age_s or {}
    by_kind = max_age_by_source if max_age_by_source is not None else params.price_max_age_by_source
    rank = {kind: i for i, kind in enumerate(params.price_source_priority)}
    latest: dict[tuple[str, str], PriceQuote] = {}
    for q in quotes:
        key = (q.asset, q.source_id)
        seen = latest.get(key)
        if seen is None or q.updated_at > seen.updated_at:
            latest[key] = q
    by_asset: dict[str, list[PriceQuote]] = {}
    for q in latest.values():
        by_asset.setdefault(q.asset, []).append(q)
    picks: dict[str, PricePick] = {}
    findings: dict[str, list[Finding]] = {}
    for asset in sorted(by_asset):
        pick, found = _pick(asset, by_asset[asset], now, params, rank, by_id, by_kind)
        if pick is not None:
            picks[asset] = pick
        if found:
            findings[asset] = found
    missing = frozenset(a for a in wanted if a not in picks and a != UNIT)
    for asset in sorted(missing):
        findings.setdefault(asset, []).append(Finding(
            FindingCode.PRICE_MISSING, Severity.CRITICAL, f"price:{asset}",
            f"no fresh price for {asset}: holders of it cannot be valued", details={"asset": asset}))
    flat = tuple(f for a in sorted(findings) for f in findings[a])
    return PriceBook(MappingProxyType(picks), flat, missing, now,
                     MappingProxyType({a: tuple(fs) for a, fs in findings.items()}))


def _pick(asset: str, quotes: list[PriceQuote], now: datetime, params: RiskParameters,
          rank: Mapping[PriceSourceKind, int], by_id: Mapping[str, int],
          by_kind: Mapping[PriceSourceKind, int]) -> tuple[PricePick | None, list[Finding]]:
    findings: list[Finding] = []
    uses: list[SourceUse] = []
    fresh: list[tuple[PriceQuote, Decimal]] = []
    for q in sorted(quotes, key=lambda x: (rank.get(x.source, len(rank)), x.source_id)):
        budget = by_id.get(q.source_id, by_kind.get(q.source, params.price_max_age_s))
        # A source clock slightly ahead of ours gives a negative age: treat it as brand new.
        age = max(Decimal(0), exact_seconds(now - q.updated_at))
        ok = q.price > 0 and age <= budget
        uses.append(SourceUse(q.source, q.source_id, q.price, age, budget, ok))
        if ok:
            fresh.append((q, age))
        elif q.price <= 0:
            findings.append(Finding(FindingCode.ORACLE_NON_POSITIVE, Severity.HIGH, f"price:{asset}:{q.source_id}",
                                    f"{asset} price from {q.source_id} is {q.price}: ignored",
                                    details={"asset": asset, "source": q.source_id, "price": str(q.price)}))
        else:
            code = FindingCode.ORACLE_STALE if q.source in _ORACLE_KINDS else FindingCode.DATA_STALE
            findings.append(Finding(code, Severity.WARNING, f"price:{asset}:{q.source_id}",
                                    f"{asset} price from {q.source_id} is {dec_str(age)} s old "
                                    f"(budget {budget} s): ignored",
                                    details={"asset": asset, "source": q.source_id, "age_s": dec_str(age),
                                             "max_age_s": budget}))
    ranked = [(q, age) for q, age in fresh if q.source in rank]
    if not ranked:
        if fresh:  # only cross-check sources (e.g. a fixed peg) are fresh: not enough to value on
            findings.append(Finding(FindingCode.PRICE_MISSING, Severity.CRITICAL, f"price:{asset}",
                                    f"{asset} has only cross-check prices ({', '.join(q.source_id for q, _ in fresh)})"
                                    ": it cannot be valued", details={"asset": asset}))
        return None, findings
    best = min(rank[q.source] for q, _ in ranked)
    primary, age = max(((q, a) for q, a in ranked if rank[q.source] == best),
                       key=lambda t: (t[0].updated_at, t[0].source_id))  # newest of the best kind
    low_q = min(fresh, key=lambda t: t[0].price)[0]
    high_q = max(fresh, key=lambda t: t[0].price)[0]
    deviation = (high_q.price - low_q.price) / low_q.price
    if deviation > params.oracle_max_deviation:
        findings.append(Finding(
            FindingCode.PRICE_DEVIATION, Severity.HIGH, f"price:{asset}",
            f"{asset} sources disagree by {deviation:.2%} (limit {params.oracle_max_deviation:.2%}): "
            f"collateral at {low_q.price} ({low_q.source_id}), liabilities at {high_q.price} ({high_q.source_id})",
            details={"asset": asset, "low": str(low_q.price), "high": str(high_q.price),
                     "deviation": dec_str(deviation), "sources": [q.source_id for q, _ in fresh]}))
        pick = PricePick(asset, low_q.price, high_q.price, primary.source.value, primary.source_id, age, deviation,
                         primary.price, low_q.source_id, high_q.source_id, tuple(uses))
    else:
        pick = PricePick(asset, primary.price, primary.price, primary.source.value, primary.source_id, age,
                         deviation, primary.price, primary.source_id, primary.source_id, tuple(uses))
    return pick, findings
