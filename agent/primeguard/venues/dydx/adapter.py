"""dYdX v4 as a :class:`~primeguard.venues.base.Collector` over
:func:`primeguard.venues.dydx.collect_many` (indexer + node), and as
:class:`~primeguard.venues.base.Levers` over :func:`primeguard.venues.dydx.levers.playbook_levers`
(node transactions signed with the broker's key)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from primeguard.config.schema import PrimeguardConfig
from primeguard.venues.base import Lever, VenueResult


class DydxVenue:
    """Reads every configured dYdX address (balances, positions, authenticators); levers
    ``halt_dydx`` and ``liquidate_dydx``."""

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

    def levers(self, cfg: PrimeguardConfig, *, config_dir: Path) -> dict[str, Lever]:
        """See :func:`primeguard.venues.dydx.levers.playbook_levers` (a lever on an account without a
        broker key refuses with ``not_configured``, which the playbook records as failed)."""
        from primeguard.venues.dydx.levers import playbook_levers

        return dict(playbook_levers(cfg, config_dir=config_dir))
