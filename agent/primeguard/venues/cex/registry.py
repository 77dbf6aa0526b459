"""The one registry of CEX exchanges: configured venue name -> its :class:`CexExchange`.

This is the only place that names exchanges. Adding an exchange = one module implementing
:class:`primeguard.venues.cex.exchange.CexExchange` + one line in :data:`EXCHANGES` (and the
venue's value in the domain's ``VenueKind`` and the config schema, which name venues for users).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

from primeguard.domain.errors import ConfigError
from primeguard.venues.cex import binance, bybit, okx
from primeguard.venues.cex.exchange import CexExchange

if TYPE_CHECKING:
    from collections.abc import Mapping

    from primeguard.venues.cex.limits import VenueLimits

EXCHANGES: Mapping[str, CexExchange] = MappingProxyType({
    "binance": binance.EXCHANGE,
    "okx": okx.EXCHANGE,
    "bybit": bybit.EXCHANGE,
})
VENUES: tuple[str, ...] = tuple(EXCHANGES)


def exchange_for(venue: str) -> CexExchange:
    """The exchange configured as ``venue``.

    Raises:
        ConfigError: no such exchange (the message lists the known ones).
    """
    try:
        return EXCHANGES[venue]
    except KeyError:
        raise ConfigError(f"unknown CEX venue {venue!r}; expected one of {', '.join(VENUES)}") from None


def default_limits() -> dict[str, VenueLimits]:
    """Every exchange's default limits, by venue name (a fresh dict each call)."""
    return {name: ex.default_limits() for name, ex in EXCHANGES.items()}
