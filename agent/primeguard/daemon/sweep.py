"""One sweep: collect every venue concurrently into an :class:`Observation`, then value it.

Collection is I/O (adapters); valuation and policy are pure. A venue that fails gives blind-spot
snapshots, never an exception that stops the other venues.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from primeguard.config.schema import PrimeguardConfig
from primeguard.domain.findings import Finding
from primeguard.domain.model import PriceQuote
from primeguard.domain.money import decimal_str
from primeguard.domain.observation import AccountSnapshot, Observation
from primeguard.venues.evm.collect import collect_evm


@dataclass(frozen=True)
class CollectStats:
    seconds: float
    evm_round_trips: int
    accounts: int
    blind_accounts: int


async def collect(cfg: PrimeguardConfig, now: datetime | None = None) -> tuple[Observation, CollectStats]:
    """Read every configured venue concurrently."""
    t0 = asyncio.get_running_loop().time()
    now = now or datetime.now(UTC)
    jobs: list[Any] = [collect_evm(cfg, now)]
    if cfg.cex_accounts:
        from primeguard.venues.cex import collect_many as cex_collect_many

        jobs.append(cex_collect_many(list(cfg.cex_accounts)))
    if cfg.dydx_accounts:
        from primeguard.venues.dydx import collect_many as dydx_collect_many

        jobs.append(dydx_collect_many(list(cfg.dydx_accounts)))
    results = await asyncio.gather(*jobs)
    evm = results[0]
    snapshots: list[AccountSnapshot] = list(evm.snapshots)
    prices: list[PriceQuote] = list(evm.prices)
    for extra in results[1:]:
        for snap in extra:
            snapshots.append(snap)
            prices.extend(snap.prices)
    findings: list[Finding] = list(evm.findings)
    obs = Observation(taken_at=now, snapshots=tuple(snapshots), prices=tuple(prices), findings=tuple(findings))
    stats = CollectStats(
        seconds=asyncio.get_running_loop().time() - t0,
        evm_round_trips=evm.round_trips,
        accounts=len(snapshots),
        blind_accounts=sum(not s.ok for s in snapshots),
    )
    return obs, stats


@dataclass(frozen=True)
class CollateralRow:
    """One holding valued in USD, with the price used and its age."""

    client_id: str
    account_id: str
    venue: str
    chain: str | None
    asset: str
    quantity: Decimal
    price: Decimal | None
    price_source: str | None
    price_age_s: int | None
    usd: Decimal | None

    def to_json(self) -> dict[str, Any]:
        return {
            "client": self.client_id, "account": self.account_id, "venue": self.venue, "chain": self.chain,
            "asset": self.asset, "quantity": decimal_str(self.quantity),
            "price": None if self.price is None else decimal_str(self.price), "price_source": self.price_source,
            "price_age_s": self.price_age_s, "usd": None if self.usd is None else decimal_str(self.usd),
        }


@dataclass(frozen=True)
class CollateralTable:
    rows: tuple[CollateralRow, ...]
    per_client: dict[str, Decimal | None] = field(default_factory=dict)  # None: blind (unpriced/unread)


def oracle_collateral(obs: Observation) -> CollateralTable:
    """Price every balance with the freshest valid oracle quote for its asset (no haircut).

    A balance without a price, or an account that could not be read, makes its client's total
    ``None``: an unknown total is never shown as a smaller known one.
    """
    best: dict[str, PriceQuote] = {}
    for q in obs.prices:
        cur = best.get(q.asset)
        if cur is None or (q.source.value == "oracle" and cur.source.value != "oracle") or (
            q.source == cur.source and q.updated_at > cur.updated_at
        ):
            best[q.asset] = q
    rows: list[CollateralRow] = []
    totals: dict[str, Decimal | None] = {}
    for snap in obs.snapshots:
        cid = snap.account.client_id
        totals.setdefault(cid, Decimal(0))
        if not snap.ok:
            totals[cid] = None
        for b in snap.balances:
            q = best.get(b.asset)
            usd = None if q is None else b.quantity * q.price
            age = None if q is None else int((obs.taken_at - q.updated_at).total_seconds())
            rows.append(CollateralRow(cid, snap.account.id, snap.account.venue.value, snap.account.chain, b.asset,
                                      b.quantity, None if q is None else q.price,
                                      None if q is None else q.source_id, age, usd))
            if usd is None:
                totals[cid] = None
            elif totals[cid] is not None:
                totals[cid] = totals[cid] + usd  # type: ignore[operator]
    return CollateralTable(tuple(rows), totals)
