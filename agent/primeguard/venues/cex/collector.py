"""The CEX sub-accounts (Binance, OKX, Bybit) as a :class:`~primeguard.venues.base.Collector` and
:class:`~primeguard.venues.base.Levers` over this package's entry points."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from primeguard.config.schema import PrimeguardConfig
from primeguard.venues.base import Lever, VenueResult


class CexCollector:
    """Reads every configured CEX sub-account; levers ``halt_cex`` and ``liquidate_cex``."""

    name = "cex"

    def configured(self, cfg: PrimeguardConfig) -> bool:
        """True when the config lists CEX accounts."""
        return bool(cfg.cex_accounts)

    async def collect(self, cfg: PrimeguardConfig, now: datetime) -> VenueResult:
        """One snapshot per account (venue prices inside each); never raises for a venue fault.
        Snapshots carry the venue's own observation time, not ``now``."""
        from primeguard.venues.cex import collect_many

        del now
        snaps = await collect_many(list(cfg.cex_accounts))
        return VenueResult(tuple(snaps), tuple(q for s in snaps for q in s.prices))

    def levers(self, cfg: PrimeguardConfig, *, config_dir: Path) -> dict[str, Lever]:
        """See :func:`primeguard.venues.cex.levers.playbook_levers`."""
        from primeguard.venues.cex.levers import playbook_levers

        return dict(playbook_levers(cfg, config_dir=config_dir))
