"""Snapshots: what one sweep observed on one account (balances, positions; unique per sweep and account).

Contract (session first, nothing commits, audit entry in the same transaction, ``now`` passed in):
see :mod:`primeguard.store.repos`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from primeguard.store._sql import table_of
from primeguard.store.codec import as_utc, store_json
from primeguard.store.repos._helpers import required
from primeguard.store.tables import SnapshotRow


def save_snapshot(
    session: Session,
    *,
    sweep_id: str,
    account_id: str,
    venue: str,
    ok: bool,
    observed_at: datetime,
    payload: Mapping[str, Any],
    error: str | None = None,
) -> SnapshotRow:
    """Store one account's observation for a sweep (unique per sweep and account).

    ``payload``: balances/positions etc.; Decimals become exact strings, floats are refused,
    sensitive keys are masked.
    """
    row = SnapshotRow(**snapshot_values(sweep_id=sweep_id, account_id=account_id, venue=venue, ok=ok,
                                        observed_at=observed_at, payload=payload, error=error))
    session.add(row)
    session.flush()
    return row


def snapshot_values(*, sweep_id: str, account_id: str, venue: str, ok: bool, observed_at: datetime,
                    payload: Mapping[str, Any], error: str | None = None) -> dict[str, Any]:
    """The column values :func:`save_snapshot` stores (checked, JSON-normalised, masked)."""
    body, masked = store_json(dict(payload))
    if masked:
        body["_masked"] = masked
    return {"sweep_id": required(sweep_id, "sweep_id"), "account_id": required(account_id, "account_id"),
            "venue": venue, "ok": bool(ok), "observed_at": as_utc(observed_at), "payload": body, "error": error}


def save_snapshots(session: Session, snapshots: Iterable[Mapping[str, Any]]) -> list[SnapshotRow]:
    """:func:`save_snapshot` for each mapping of its keyword arguments."""
    return [save_snapshot(session, **dict(s)) for s in snapshots]


def latest_snapshot(session: Session, account_id: str) -> SnapshotRow | None:
    t = table_of(SnapshotRow)
    stmt = sa.select(SnapshotRow).where(t.c.account_id == account_id).order_by(t.c.observed_at.desc(), t.c.id.desc())
    return session.execute(stmt.limit(1)).scalar_one_or_none()


def sweep_snapshots(session: Session, sweep_id: str) -> list[SnapshotRow]:
    t = table_of(SnapshotRow)
    stmt = sa.select(SnapshotRow).where(t.c.sweep_id == sweep_id).order_by(t.c.account_id)
    return list(session.execute(stmt).scalars())


def insert_snapshot_values(session: Session, values: Sequence[Mapping[str, Any]]) -> int:
    """Store snapshot rows already checked by :func:`snapshot_values` (prepared elsewhere, e.g. in
    a worker thread before the transaction) with one bulk INSERT; returns how many."""
    if values:
        session.execute(sa.insert(table_of(SnapshotRow)), list(values))
    return len(values)
