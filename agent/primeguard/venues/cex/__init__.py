"""CEX adapter (Binance, OKX, Bybit) on ccxt's async clients: collection, capabilities, levers.

Public API::

    collect(account_cfg, *, pool=None, base_dir=None, now=None, timeout_s=30) -> AccountSnapshot
    collect_many(accounts, *, pool=None, limits=None, base_dir=None, ...) -> list[AccountSnapshot]
    capabilities_report(snapshots) -> list[dict]
    CexClientPool(limits=..., request_timeout_s=..., base_dir=...)   # keep one per daemon loop
    build_exchange(account_cfg, cred_id, *, sync=False) -> ccxt client (classified errors)
    levers: cancel_all_orders, close_all_positions, disable_client_keys, playbook_levers
"""

from primeguard.venues.cex.capabilities import capabilities_report
from primeguard.venues.cex.client import CexClientPool, build_exchange
from primeguard.venues.cex.collect import check_accounts, collect, collect_many
from primeguard.venues.cex.limits import DEFAULT_LIMITS, VenueLimits

__all__ = [
    "DEFAULT_LIMITS",
    "CexClientPool",
    "VenueLimits",
    "build_exchange",
    "capabilities_report",
    "check_accounts",
    "collect",
    "collect_many",
]
