"""The CEX sub-accounts (Binance, OKX, Bybit) as a :class:`~primeguard.venues.base.Collector` and
:class:`~primeguard.venues.base.Levers` over this package's entry points."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from primeguard.config.schema import PrimeguardConfig
from primeguard.domain.findings import FindingCode
from primeguard.domain.observation import AccountSnapshot
from primeguard.venues.base import Lever, VenueResult
from primeguard.venues.session import VenueSession

POOL_MAX_AGE_S = 3600.0
"""How long the daemon keeps one CEX client pool (and so the venues' market lists) before building a
fresh one; a position on an instrument the markets do not list reloads them at once."""


def _suspect(snap: AccountSnapshot) -> bool:
    """A blind account for a reason a fresh pool might cure (a transport failure, a refused or changed
    key, an internal error); a rate limit is not one: the kept pool's limiter remembers the pause."""
    return not snap.ok and all(f.code is not FindingCode.VENUE_RATE_LIMITED for f in snap.findings)


class CexCollector:
    """Reads every configured CEX sub-account; levers ``halt_cex`` and ``liquidate_cex``."""

    name = "cex"

    def configured(self, cfg: PrimeguardConfig) -> bool:
        """True when the config lists CEX accounts."""
        return bool(cfg.cex_accounts)

    async def collect(self, cfg: PrimeguardConfig, now: datetime, *,
                      session: VenueSession | None = None) -> VenueResult:
        """One snapshot per account (venue prices inside each); never raises for a venue fault.
        Snapshots carry the venue's own observation time, not ``now``.

        With a usable ``session`` the accounts are read over its kept :class:`CexClientPool`
        (clients, TLS context, connections, markets and per-venue limiters carried from sweep to
        sweep; rebuilt every :data:`POOL_MAX_AGE_S`, which reloads the markets, when found closed,
        and after a collection in which an account was blind for any reason but a rate limit).
        Without one, or from another event loop, a pool is built and closed for this call."""
        from primeguard.venues.cex import collect_many
        from primeguard.venues.cex.client import CexClientPool
        from primeguard.venues.session import read_over

        del now
        accounts = list(cfg.cex_accounts)
        snaps = await read_over(session, "cex", CexClientPool, max_age_s=POOL_MAX_AGE_S,
                                read=lambda pool: collect_many(accounts, pool=pool), suspect=_suspect)
        return VenueResult(tuple(snaps), tuple(q for s in snaps for q in s.prices))

    def levers(self, cfg: PrimeguardConfig, *, config_dir: Path) -> dict[str, Lever]:
        """See :func:`primeguard.venues.cex.levers.playbook_levers`."""
        from primeguard.venues.cex.levers import playbook_levers

        return dict(playbook_levers(cfg, config_dir=config_dir))
