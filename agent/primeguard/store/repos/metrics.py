"""Metric history: points of a client's risk history (equity, loan, LTV, ladder state), stored exactly;
and the daily closing prices volatility haircuts are computed from.

Contract (session first, nothing commits, audit entry in the same transaction, ``now`` passed in):
see :mod:`primeguard.store.repos`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from primeguard.store._sql import table_of, upsert_insert
from primeguard.store.codec import Memo, as_utc, exact_decimal, jsonable
from primeguard.store.repos._helpers import required
from primeguard.store.tables import MetricRow, PriceCloseRow


def record_metric(
    session: Session,
    *,
    client_id: str,
    at: datetime,
    equity: Decimal | int | str,
    loan: Decimal | int | str,
    ltv: Decimal | int | str | None,
    ladder_state: str,
    sweep_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> MetricRow:
    """Append one point of a client's risk history. Values are stored exactly (no rounding)."""
    row = MetricRow(**metric_values(client_id=client_id, at=at, equity=equity, loan=loan, ltv=ltv,
                                    ladder_state=ladder_state, sweep_id=sweep_id, extra=extra))
    session.add(row)
    session.flush()
    return row


def metric_values(*, client_id: str, at: datetime, equity: Decimal | int | str, loan: Decimal | int | str,
                  ltv: Decimal | int | str | None, ladder_state: str, sweep_id: str | None = None,
                  extra: Mapping[str, Any] | None = None, memo: Memo | None = None) -> dict[str, Any]:
    """The column values :func:`record_metric` stores (checked, exact). ``memo``: see
    :func:`~primeguard.store.codec.jsonable` (one per batch)."""
    return {"client_id": required(client_id, "client_id"), "at": as_utc(at), "sweep_id": sweep_id,
            "equity": exact_decimal(equity, what="equity"), "loan": exact_decimal(loan, what="loan"),
            "ltv": None if ltv is None else exact_decimal(ltv, what="ltv"), "ladder_state": ladder_state,
            "extra": jsonable(dict(extra or {}), memo=memo)}


def metric_history(
    session: Session, client_id: str, *, since: datetime | None = None, until: datetime | None = None,
    limit: int = 10_000,
) -> list[MetricRow]:
    """A client's metrics in time order (oldest first)."""
    t = table_of(MetricRow)
    stmt = sa.select(MetricRow).where(t.c.client_id == client_id)
    if since is not None:
        stmt = stmt.where(t.c.at >= as_utc(since))
    if until is not None:
        stmt = stmt.where(t.c.at <= as_utc(until))
    return list(session.execute(stmt.order_by(t.c.at, t.c.id).limit(limit)).scalars())


def latest_metric(session: Session, client_id: str) -> MetricRow | None:
    t = table_of(MetricRow)
    stmt = sa.select(MetricRow).where(t.c.client_id == client_id).order_by(t.c.at.desc(), t.c.id.desc()).limit(1)
    return session.execute(stmt).scalar_one_or_none()


def record_price_closes(session: Session, *, at: datetime, prices: Mapping[str, Decimal]) -> int:
    """Keep ``prices`` (asset -> reference price, USD) as the assets' closes of ``at``'s UTC day:
    one row per asset and day, replaced by a later observation of the same day, never by an earlier
    one. Non-finite or non-positive prices are skipped. Returns the number of prices offered."""
    when = as_utc(at)
    day = when.date().isoformat()
    t = table_of(PriceCloseRow)
    n = 0
    for asset, price in sorted(prices.items()):
        if not price.is_finite() or price <= 0:
            continue
        ins = upsert_insert(session, t).values(asset=asset, day=day, at=when, price=exact_decimal(price, what="price"))
        session.execute(ins.on_conflict_do_update(
            index_elements=[t.c.asset, t.c.day], set_={"at": ins.excluded.at, "price": ins.excluded.price},
            where=t.c.at <= ins.excluded.at))
        n += 1
    return n


def insert_metric_values(session: Session, values: Sequence[Mapping[str, Any]]) -> int:
    """Append metric points already checked by :func:`metric_values` (prepared elsewhere, e.g. in
    a worker thread before the transaction) with one bulk INSERT; returns how many."""
    if values:
        session.execute(sa.insert(table_of(MetricRow)), list(values))
    return len(values)
