"""Leases: named, expiring locks with fencing tokens (one daemon replica works at a time).

Contract (session first, nothing commits, audit entry in the same transaction, ``now`` passed in):
see :mod:`primeguard.store.repos`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from primeguard.domain.errors import InputError
from primeguard.store._sql import rowcount, table_of, upsert_insert
from primeguard.store.repos._helpers import get_row, required, resolve_now
from primeguard.store.tables import LeaseRow


def acquire_lease(session: Session, name: str, owner: str, ttl_s: float, *,
                  now: datetime | None = None) -> int | None:
    """Take lease ``name`` for ``ttl_s`` seconds. Returns the fencing token, or None if someone else
    holds it unexpired.

    One atomic ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` (row-locked on PostgreSQL, under the
    write lock on SQLite): two owners never both hold an unexpired lease. The token increases every
    time the lease changes hands (or is re-taken after expiry); the holder re-acquiring an unexpired
    lease extends it and keeps its token. Times come from this process's clock: keep replicas' clocks
    in sync well within the TTL.
    """
    if ttl_s <= 0:
        raise InputError("ttl_s must be positive")
    now = resolve_now(now)
    expires = now + timedelta(seconds=ttl_s)
    t = table_of(LeaseRow)
    ins = upsert_insert(session, t).values(
        name=required(name, "lease name"), owner=required(owner, "owner"), fencing_token=1, expires_at=expires,
        acquired_at=now, renewed_at=now,
    )
    still_mine = sa.and_(t.c.owner == ins.excluded.owner, t.c.expires_at > now)
    stmt = ins.on_conflict_do_update(
        index_elements=[t.c.name],
        set_={
            "owner": ins.excluded.owner,
            "expires_at": ins.excluded.expires_at,
            "fencing_token": sa.case((still_mine, t.c.fencing_token), else_=t.c.fencing_token + 1),
            "acquired_at": sa.case((still_mine, t.c.acquired_at), else_=ins.excluded.acquired_at),
            "renewed_at": ins.excluded.renewed_at,
        },
        where=sa.or_(t.c.expires_at <= now, t.c.owner == ins.excluded.owner),
    ).returning(t.c.fencing_token)
    row = session.execute(stmt).first()
    return int(row[0]) if row is not None else None


def renew_lease(session: Session, name: str, owner: str, token: int, ttl_s: float, *,
                now: datetime | None = None) -> bool:
    """Extend an unexpired lease held by ``owner`` with ``token``. False: it was lost (stop working)."""
    now = resolve_now(now)
    t = table_of(LeaseRow)
    res = session.execute(
        sa.update(t).where(t.c.name == name, t.c.owner == owner, t.c.fencing_token == token, t.c.expires_at > now)
        .values(expires_at=now + timedelta(seconds=ttl_s), renewed_at=now)
    )
    return rowcount(res) == 1


def release_lease(session: Session, name: str, owner: str, token: int, *, now: datetime | None = None) -> bool:
    """Give the lease up now (others may take it at once). False when it was not held with ``token``."""
    now = resolve_now(now)
    t = table_of(LeaseRow)
    res = session.execute(
        sa.update(t).where(t.c.name == name, t.c.owner == owner, t.c.fencing_token == token, t.c.expires_at > now)
        .values(expires_at=now, renewed_at=now)
    )
    return rowcount(res) == 1


def check_lease(session: Session, name: str, owner: str, token: int, *, now: datetime | None = None,
                lock: bool = True) -> bool:
    """True when ``owner`` holds ``name`` with ``token`` unexpired. With ``lock`` (PostgreSQL), the
    lease row is share-locked until the transaction ends, so no one can take it over while the
    caller's fenced writes commit."""
    now = resolve_now(now)
    t = table_of(LeaseRow)
    stmt = sa.select(t.c.name).where(
        t.c.name == name, t.c.owner == owner, t.c.fencing_token == token, t.c.expires_at > now
    )
    if lock:
        stmt = stmt.with_for_update(read=True)
    return session.execute(stmt).first() is not None


def get_lease(session: Session, name: str) -> LeaseRow | None:
    return get_row(session, LeaseRow, name)
