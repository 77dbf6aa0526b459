"""Collect: read every configured venue concurrently into one :class:`Observation`.

Collection is I/O (venue adapters, from :mod:`primeguard.venues.registry`); valuation and policy
come after, pure. A venue that fails gives blind-spot snapshots, never an exception that stops the
other venues. No venue is special here: each returns a :class:`~primeguard.venues.base.VenueResult`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from primeguard.config.schema import PrimeguardConfig
from primeguard.domain.observation import Observation
from primeguard.venues.registry import configured
from primeguard.venues.session import VenueSession


@dataclass(frozen=True)
class CollectStats:
    """Operator counters of one collection: wall ``seconds``, accounts read, accounts blind,
    each venue's own counters (``venues["evm"]["round_trips"]``) and wall seconds per venue
    (``venue_seconds["binance"]``; venues run concurrently). Never used in decisions."""

    seconds: float
    accounts: int
    blind_accounts: int
    venues: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    venue_seconds: Mapping[str, float] = field(default_factory=dict)

    def counters(self) -> dict[str, int]:
        """The venues' counters flattened as ``<venue>_<counter>`` (e.g. ``evm_round_trips``)."""
        return {f"{v}_{k}": n for v, counts in self.venues.items() for k, n in counts.items()}


def takes_session(collector: Any) -> bool:
    """Whether ``collector.collect`` accepts the keyword ``session`` (read once per class)."""
    cls = type(collector)
    if cls not in _TAKES_SESSION:
        try:
            params = inspect.signature(collector.collect).parameters
        except (TypeError, ValueError):
            params = {}  # type: ignore[assignment]
        _TAKES_SESSION[cls] = "session" in params and params["session"].kind in (
            inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return _TAKES_SESSION[cls]


_TAKES_SESSION: dict[type, bool] = {}


async def collect(cfg: PrimeguardConfig, now: datetime | None = None, *, session: VenueSession | None = None,
                  progress: Callable[[str], None] | None = None) -> tuple[Observation, CollectStats]:
    """Read every configured venue concurrently (``now`` defaults to the current UTC time).

    Snapshots, prices and findings are concatenated in registry order. Never raises for a venue
    fault (the adapters turn those into blind snapshots); never writes anything. ``session``: the
    daemon's kept-open venue pools, given to the collectors that accept one (see
    :mod:`primeguard.venues.session`); ``None`` builds and closes every pool within this call.
    ``progress``, when given, is told a line for people as each venue finishes (long CLI sweeps).
    """
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    now = now or datetime.now(UTC)
    collectors = configured(cfg)
    seconds: dict[str, float] = {}

    async def timed(c: Any) -> Any:
        start = loop.time()
        try:
            if session is not None and takes_session(c):
                result = await c.collect(cfg, now, session=session)
            else:
                result = await c.collect(cfg, now)
        finally:
            seconds[c.name] = loop.time() - start
        if progress is not None:
            blind = sum(not snap.ok for snap in result.snapshots)
            progress(f"{c.name}: {len(result.snapshots)} accounts read in {seconds[c.name]:.1f} s"
                     + (f", {blind} blind" if blind else ""))
        return result

    results = await asyncio.gather(*(timed(c) for c in collectors))
    snapshots = tuple(s for r in results for s in r.snapshots)
    obs = Observation(taken_at=now, snapshots=snapshots, prices=tuple(q for r in results for q in r.prices),
                      findings=tuple(f for r in results for f in r.findings))
    stats = CollectStats(seconds=loop.time() - t0, accounts=len(snapshots),
                         blind_accounts=sum(not s.ok for s in snapshots),
                         venues={c.name: dict(r.stats) for c, r in zip(collectors, results, strict=True) if r.stats},
                         venue_seconds=seconds)
    return obs, stats
