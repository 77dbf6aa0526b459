"""Choose one USD price per asset from several sources, conservatively.

Sources are tried in the policy's priority order; every *fresh* source is cross-checked. When
fresh sources disagree by more than ``oracle_max_deviation``, a finding is raised and collateral
is valued at the lowest price while liabilities (short positions) use the highest. No fresh source
→ the asset is missing: whoever holds it is blind, never valued at zero or at a stale price.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType

from primeguard.domain.findings import Finding, FindingCode, Severity
from primeguard.domain.model import PriceQuote
from primeguard.risk.params import RiskParameters

STABLE_DEFAULT = frozenset({"USD"})


@dataclass(frozen=True, slots=True)
class PricePick:
    """The price used for one asset: lower bound for collateral, upper bound for liabilities."""

    asset: str
    collateral: Decimal
    liability: Decimal
    source: str  # source kind of the primary quote
    source_id: str
    age_s: int
    deviation: Decimal  # (max - min) / min over fresh sources; 0 with one source

    def to_json(self) -> dict[str, object]:
        return {"asset": self.asset, "collateral": str(self.collateral), "liability": str(self.liability),
                "source": self.source, "source_id": self.source_id, "age_s": self.age_s,
                "deviation": str(self.deviation)}


@dataclass(frozen=True, slots=True)
class PriceBook:
    picks: Mapping[str, PricePick] = field(default_factory=lambda: MappingProxyType({}))
    findings: tuple[Finding, ...] = ()
    missing: frozenset[str] = frozenset()

    def collateral(self, asset: str) -> Decimal | None:
        p = self.picks.get(asset)
        return None if p is None else p.collateral

    def liability(self, asset: str) -> Decimal | None:
        p = self.picks.get(asset)
        return None if p is None else p.liability


def select_prices(quotes: Iterable[PriceQuote], now: datetime, params: RiskParameters,
                  *, wanted: Iterable[str] = (), max_age_s: Mapping[str, int] | None = None) -> PriceBook:
    """Pick prices for every quoted asset (and report ``wanted`` assets that have none).

    ``max_age_s`` maps a quote's ``source_id`` to its freshness budget (e.g. an oracle's heartbeat);
    other quotes use ``params.price_max_age_s``.
    """
    budgets = max_age_s or {}
    rank = {kind: i for i, kind in enumerate(params.price_source_priority)}
    by_asset: dict[str, list[PriceQuote]] = {}
    for q in quotes:
        by_asset.setdefault(q.asset, []).append(q)
    picks: dict[str, PricePick] = {}
    findings: list[Finding] = []
    for asset, qs in by_asset.items():
        fresh = []
        for q in qs:
            age = int((now - q.updated_at).total_seconds())
            if q.price > 0 and age <= budgets.get(q.source_id, params.price_max_age_s):
                fresh.append((rank.get(q.source, len(rank)), -q.updated_at.timestamp(), q, age))
            else:
                findings.append(Finding(FindingCode.DATA_STALE, Severity.WARNING, f"price:{asset}:{q.source_id}",
                                        f"{asset} price from {q.source_id} is {age} s old or not positive",
                                        details={"asset": asset, "source": q.source_id, "age_s": age}))
        if not fresh:
            continue
        fresh.sort(key=lambda t: (t[0], t[1]))
        primary, age = fresh[0][2], fresh[0][3]
        prices = [t[2].price for t in fresh]
        low, high = min(prices), max(prices)
        deviation = (high - low) / low
        if deviation > params.oracle_max_deviation:
            findings.append(Finding(
                FindingCode.PRICE_DEVIATION, Severity.HIGH, f"price:{asset}",
                f"{asset} sources disagree by {deviation:.2%} (limit {params.oracle_max_deviation:.2%}): "
                f"collateral at {low}, liabilities at {high}",
                details={"asset": asset, "low": str(low), "high": str(high),
                         "sources": [t[2].source_id for t in fresh]}))
            picks[asset] = PricePick(asset, low, high, primary.source.value, primary.source_id, age, deviation)
        else:
            picks[asset] = PricePick(asset, primary.price, primary.price, primary.source.value, primary.source_id,
                                     age, deviation)
    missing = frozenset(a for a in wanted if a not in picks and a not in STABLE_DEFAULT)
    for asset in sorted(missing):
        findings.append(Finding(FindingCode.PRICE_MISSING, Severity.CRITICAL, f"price:{asset}",
                                f"no fresh price for {asset}: holders of it cannot be valued"))
    return PriceBook(MappingProxyType(picks), tuple(findings), missing)
