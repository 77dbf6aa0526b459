"""Collect: read every configured venue concurrently into one :class:`Observation`.

Collection is I/O (venue adapters); valuation and policy come after, pure. A venue that fails gives
blind-spot snapshots, never an exception that stops the other venues.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from primeguard.config.schema import PrimeguardConfig
from primeguard.domain.findings import Finding
from primeguard.domain.model import PriceQuote
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
