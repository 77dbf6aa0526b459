"""Collateral per holding and per client at oracle prices (no haircut): the sweep report's table.

Pure: reads an :class:`Observation`, does no I/O. USD values are ``Decimal``; a total that cannot be
known is ``None``, never a smaller known number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from primeguard.domain.model import PriceQuote
from primeguard.domain.money import decimal_str
from primeguard.domain.observation import Observation


@dataclass(frozen=True)
class CollateralRow:
    """One holding valued in USD, with the price used and its age."""

    client_id: str
    account_id: str
    venue: str
    chain: str | None
    asset: str
    quantity: Decimal
    price: Decimal | None
    price_source: str | None
    price_age_s: int | None
    usd: Decimal | None

    def to_json(self) -> dict[str, Any]:
        """The row as JSON: decimals as strings, ``None`` for unknown price or value."""
        return {
            "client": self.client_id, "account": self.account_id, "venue": self.venue, "chain": self.chain,
            "asset": self.asset, "quantity": decimal_str(self.quantity),
            "price": None if self.price is None else decimal_str(self.price), "price_source": self.price_source,
            "price_age_s": self.price_age_s, "usd": None if self.usd is None else decimal_str(self.usd),
        }


@dataclass(frozen=True)
class CollateralTable:
    """Every holding's row, and per client the USD total (``None``: blind or unpriced)."""

    rows: tuple[CollateralRow, ...]
    per_client: dict[str, Decimal | None] = field(default_factory=dict)  # None: blind (unpriced/unread)


def oracle_collateral(obs: Observation) -> CollateralTable:
    """Price every balance with the freshest valid oracle quote for its asset (no haircut).

    A balance without a price, or an account that could not be read, makes its client's total
    ``None``: an unknown total is never shown as a smaller known one.
    """
    best: dict[str, PriceQuote] = {}
    for q in obs.prices:
        cur = best.get(q.asset)
        if cur is None or (q.source.value == "oracle" and cur.source.value != "oracle") or (
            q.source == cur.source and q.updated_at > cur.updated_at
        ):
            best[q.asset] = q
    rows: list[CollateralRow] = []
    totals: dict[str, Decimal | None] = {}
    for snap in obs.snapshots:
        cid = snap.account.client_id
        totals.setdefault(cid, Decimal(0))
        if not snap.ok:
            totals[cid] = None
        for b in snap.balances:
            q = best.get(b.asset)
            usd = None if q is None else b.quantity * q.price
            age = None if q is None else int((obs.taken_at - q.updated_at).total_seconds())
            rows.append(CollateralRow(cid, snap.account.id, snap.account.venue.value, snap.account.chain, b.asset,
                                      b.quantity, None if q is None else q.price,
                                      None if q is None else q.source_id, age, usd))
            if usd is None:
                totals[cid] = None
            elif totals[cid] is not None:
                totals[cid] = totals[cid] + usd  # type: ignore[operator]
    return CollateralTable(tuple(rows), totals)
