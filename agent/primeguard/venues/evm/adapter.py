"""The EVM chains as a :class:`~primeguard.venues.base.Collector`: wallets, vaults and oracle
feeds on every configured chain, in batched reads (:func:`primeguard.venues.evm.collect.collect_evm`)."""

from __future__ import annotations

from datetime import datetime

from primeguard.config.schema import PrimeguardConfig
from primeguard.venues.base import VenueResult
from primeguard.venues.evm.collect import collect_evm


class EvmCollector:
    """Reads every configured chain; always runs (no chains: an empty result)."""

    name = "evm"

    def configured(self, cfg: PrimeguardConfig) -> bool:
        """Always true: the EVM collection is the sweep's base (its round trips are always reported)."""
        del cfg
        return True

    async def collect(self, cfg: PrimeguardConfig, now: datetime) -> VenueResult:
        """Snapshots of every wallet and vault, oracle prices and chain findings; stats
        ``round_trips`` (JSON-RPC requests made). Never raises for a chain fault."""
        got = await collect_evm(cfg, now)
        return VenueResult(got.snapshots, got.prices, got.findings, {"round_trips": got.round_trips})
