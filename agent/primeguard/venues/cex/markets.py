"""Markets as primeguard needs them: exact tick/step sizes and venue ids, per exchange.

Pure values; :func:`primeguard.venues.cex.client.market_book` builds a :class:`MarketBook` from
ccxt's loaded markets with the exchange's own reading of its fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class MarketInfo:
    symbol: str  # unified, e.g. "BTC/USDT:USDT"
    id: str  # venue id, e.g. "BTCUSDT" / "BTC-USDT-SWAP"
    kind: str  # spot | swap
    base: str
    quote: str
    settle: str | None
    tick: Decimal
    step: Decimal
    contract_size: Decimal  # base units per contract (OKX swaps), 1 elsewhere


@dataclass(frozen=True)
class MarketBook:
    venue: str
    by_symbol: Mapping[str, MarketInfo]
    by_id: Mapping[tuple[str, str], MarketInfo]

    def swap(self, venue_id: str) -> MarketInfo | None:
        """The linear swap whose venue id is ``venue_id``, or None when the book does not know it."""
        return self.by_id.get(("swap", venue_id))

    def spot(self, base: str, quote: str) -> MarketInfo | None:
        """The spot market ``base/quote``, or None when the venue lists none."""
        m = self.by_symbol.get(f"{base}/{quote}")
        return m if m is not None and m.kind == "spot" else None
