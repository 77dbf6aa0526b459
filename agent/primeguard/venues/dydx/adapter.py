"""dYdX v4 as a :class:`~primeguard.venues.base.Collector` over
:func:`primeguard.venues.dydx.collect_many` (indexer + node)."""

from __future__ import annotations

from datetime import datetime

from primeguard.config.schema import PrimeguardConfig
from primeguard.venues.base import VenueResult


class DydxVenue:
    """Reads every configured dYdX address (balances, positions, authenticators)."""

    name = "dydx"

    def configured(self, cfg: PrimeguardConfig) -> bool:
        """True when the config lists dYdX accounts."""
        return bool(cfg.dydx_accounts)

    async def collect(self, cfg: PrimeguardConfig, now: datetime) -> VenueResult:
        """One snapshot per account (indexer oracle prices inside each); never raises for a venue
        fault. Snapshots carry the indexer's observation time, not ``now``."""
        from primeguard.venues.dydx import collect_many

        del now
        snaps = await collect_many(list(cfg.dydx_accounts))
        return VenueResult(tuple(snaps), tuple(q for s in snaps for q in s.prices))
