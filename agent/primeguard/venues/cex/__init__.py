"""CEX adapter on ccxt's async clients: collection, capabilities, levers.

One module per exchange (``binance``, ``okx``, ``bybit``) implements
:class:`primeguard.venues.cex.exchange.CexExchange`; the shared modules find it in
:data:`primeguard.venues.cex.registry.EXCHANGES`. Adding an exchange = one module + one registry line.

Public API::

    collect(account_cfg, *, pool=None, base_dir=None, now=None, timeout_s=30) -> AccountSnapshot
    collect_many(accounts, *, pool=None, limits=None, base_dir=None, ...) -> list[AccountSnapshot]
    capabilities_report(snapshots) -> list[dict]
    CexClientPool(limits=..., request_timeout_s=..., base_dir=...)   # keep one per daemon loop
    build_exchange(account_cfg, cred_id, *, sync=False) -> ccxt client (classified errors)
    levers: cancel_all_orders, close_all_positions, disable_client_keys, playbook_levers
    registry: EXCHANGES (venue name -> CexExchange), exchange_for(venue)
"""

from primeguard.venues.cex.capabilities import capabilities_report
from primeguard.venues.cex.client import CexClientPool, build_exchange
from primeguard.venues.cex.collect import check_accounts, collect, collect_many
from primeguard.venues.cex.exchange import CexExchange
from primeguard.venues.cex.limits import VenueLimits
from primeguard.venues.cex.registry import EXCHANGES, default_limits, exchange_for

DEFAULT_LIMITS = default_limits()

__all__ = [
    "DEFAULT_LIMITS",
    "EXCHANGES",
    "CexClientPool",
    "CexExchange",
    "VenueLimits",
    "build_exchange",
    "capabilities_report",
    "check_accounts",
    "collect",
    "collect_many",
    "exchange_for",
]
