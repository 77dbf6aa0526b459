"""dYdX v4 as a :class:`~primeguard.venues.base.Collector` over
:func:`primeguard.venues.dydx.collect_many` (indexer + node), and as
:class:`~primeguard.venues.base.Levers` over :func:`primeguard.venues.dydx.levers.playbook_levers`
(node transactions signed with the broker's key)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from primeguard.config.schema import PrimeguardConfig
from primeguard.venues.base import Lever, VenueResult
from primeguard.venues.session import VenueSession

POOL_MAX_AGE_S = 3600.0
"""How long the daemon keeps its dYdX indexer connection pools before making fresh ones."""


class DydxVenue:
    """Reads every configured dYdX address (balances, positions, authenticators); levers
    ``halt_dydx`` and ``liquidate_dydx``."""

    name = "dydx"

    def configured(self, cfg: PrimeguardConfig) -> bool:
        """True when the config lists dYdX accounts."""
        return bool(cfg.dydx_accounts)

    async def collect(self, cfg: PrimeguardConfig, now: datetime, *,
                      session: VenueSession | None = None) -> VenueResult:
        """One snapshot per account (indexer oracle prices inside each); never raises for a venue
        fault. Snapshots carry the indexer's observation time, not ``now``.

        With a usable ``session`` the indexer connection pools are kept in it from sweep to sweep
        (rebuilt every :data:`POOL_MAX_AGE_S`, when one was found closed, and after a collection in
        which an account was blind); without one, or from another event loop, they are made and closed for this call."""
        from primeguard.venues.dydx import collect_many
        from primeguard.venues.dydx.collector import IndexerPools
        from primeguard.venues.session import read_over

        del now
        accounts = list(cfg.dydx_accounts)
        snaps = await read_over(session, "dydx", IndexerPools, max_age_s=POOL_MAX_AGE_S,
                                read=lambda pools: collect_many(accounts, pools=pools), suspect=lambda s: not s.ok)
        return VenueResult(tuple(snaps), tuple(q for s in snaps for q in s.prices))

    def levers(self, cfg: PrimeguardConfig, *, config_dir: Path) -> dict[str, Lever]:
        """See :func:`primeguard.venues.dydx.levers.playbook_levers` (a lever on an account without a
        broker key refuses with ``not_configured``, which the playbook records as failed)."""
        from primeguard.venues.dydx.levers import playbook_levers

        return dict(playbook_levers(cfg, config_dir=config_dir))
