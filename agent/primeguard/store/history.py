"""Read-only queries over the stored history, shaped for the pure risk code: a client's track record
(``metric_history`` as :class:`~primeguard.risk.eligibility.HistoryPoint`) and daily closing prices
(``price_closes``) for volatility haircuts. Session first, nothing written, nothing commits."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlmodel import Session

from primeguard.risk.eligibility import HistoryPoint
from primeguard.store._sql import table_of
from primeguard.store.codec import as_utc
from primeguard.store.tables import MetricRow, PriceCloseRow


def client_history(session: Session, client_id: str, *, since: datetime | None = None,
                   until: datetime | None = None) -> list[HistoryPoint]:
    """The client's stored sweeps in time order (oldest first), as history points: equity and loan
    owed (USD), ladder state, and blind when the sweep could not see the whole book (read from the
    stored valuation; a row without that flag counts as blind: fail closed). Only the columns the
    track record needs are read (not the stored valuation document)."""
    t = table_of(MetricRow)
    blind = t.c.extra["valuation"]["blind"].as_boolean()
    stmt = sa.select(t.c.at, t.c.equity, t.c.loan, t.c.ladder_state, blind).where(t.c.client_id == client_id)
    if since is not None:
        stmt = stmt.where(t.c.at >= as_utc(since))
    if until is not None:
        stmt = stmt.where(t.c.at <= as_utc(until))
    rows = session.execute(stmt.order_by(t.c.at, t.c.id))
    return [HistoryPoint(as_utc(at), Decimal(equity), Decimal(loan), state, blind_ is not False)
            for at, equity, loan, state, blind_ in rows]


def price_closes(session: Session, assets: Iterable[str], *, since: datetime, until: datetime
                 ) -> dict[str, list[tuple[datetime, Decimal]]]:
    """Per asset, the stored daily closes ``(time of the last price of the day, price)`` between
    ``since`` and ``until``, oldest first. Assets without history are absent."""
    t = table_of(PriceCloseRow)
    wanted = sorted(set(assets))
    out: dict[str, list[tuple[datetime, Decimal]]] = {}
    if not wanted:
        return out
    stmt = (sa.select(t.c.asset, t.c.at, t.c.price).where(t.c.asset.in_(wanted))
            .where(t.c.at >= as_utc(since)).where(t.c.at <= as_utc(until)).order_by(t.c.asset, t.c.day))
    for asset, at, price in session.execute(stmt):
        out.setdefault(asset, []).append((as_utc(at), Decimal(price)))
    return out
