"""Alerts: one per finding and channel, moved through their delivery states (cooldown, retries).

Contract (session first, nothing commits, audit entry in the same transaction, ``now`` passed in):
see :mod:`primeguard.store.repos`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from primeguard.store._sql import insert_ignore, rowcount, table_of, upsert_insert
from primeguard.store.codec import as_utc
from primeguard.store.errors import IllegalTransition, NotFound, StaleState
from primeguard.store.repos._helpers import enum_value, get_row, required, resolve_now
from primeguard.store.tables import AlertRow, AlertState

ALERT_TRANSITIONS: dict[str, frozenset[str]] = {
    AlertState.PENDING: frozenset({AlertState.SENT, AlertState.FAILED, AlertState.SUPPRESSED, AlertState.RESOLVED}),
    AlertState.FAILED: frozenset(
        {AlertState.PENDING, AlertState.SENT, AlertState.FAILED, AlertState.SUPPRESSED, AlertState.RESOLVED}
    ),
    AlertState.SENT: frozenset({AlertState.PENDING, AlertState.SUPPRESSED, AlertState.RESOLVED}),
    AlertState.SUPPRESSED: frozenset({AlertState.PENDING, AlertState.RESOLVED}),
    AlertState.RESOLVED: frozenset({AlertState.PENDING}),
}


def ensure_alert(
    session: Session, *, finding_key: str, channel: str, level: str, now: datetime | None = None
) -> tuple[AlertRow, bool]:
    """The alert for ``(finding_key, channel)``, created ``pending`` if absent. Returns ``(row, created)``."""
    now = resolve_now(now)
    t = table_of(AlertRow)
    created = insert_ignore(session, t, {
        "finding_key": required(finding_key, "finding_key"), "channel": required(channel, "channel"), "level": level,
        "state": AlertState.PENDING.value, "attempts": 0, "created_at": now, "updated_at": now,
    })
    row = get_alert(session, finding_key=finding_key, channel=channel)
    assert row is not None
    return row, created


def get_alert(session: Session, *, finding_key: str, channel: str) -> AlertRow | None:
    t = table_of(AlertRow)
    stmt = sa.select(AlertRow).where(t.c.finding_key == finding_key, t.c.channel == channel)
    return session.execute(stmt.execution_options(populate_existing=True)).scalar_one_or_none()


def transition_alert(
    session: Session,
    alert_id: int,
    to: str,
    *,
    now: datetime | None = None,
    expected: str | None = None,
    cooldown_until: datetime | None = None,
    level: str | None = None,
    error: str | None = None,
) -> AlertRow:
    """Move an alert to ``to``. ``sent``/``failed`` count an attempt; ``sent`` records ``sent_at``
    and ``cooldown_until``; ``failed`` records ``error``.

    Raises:
        NotFound, IllegalTransition, StaleState (``expected`` given and different, or a concurrent change).
    """
    row = get_row(session, AlertRow, alert_id)
    if row is None:
        raise NotFound(f"alert {alert_id} not found")
    transition_loaded_alert(session, row, to, now=now, expected=expected, cooldown_until=cooldown_until,
                            level=level, error=error)
    fresh = get_row(session, AlertRow, alert_id)
    assert fresh is not None
    return fresh


def transition_loaded_alert(
    session: Session,
    row: AlertRow,
    to: str,
    *,
    now: datetime | None = None,
    expected: str | None = None,
    cooldown_until: datetime | None = None,
    level: str | None = None,
    error: str | None = None,
) -> None:
    """:func:`transition_alert` for a row already read in this transaction (one UPDATE, no
    re-read; ``row`` is not refreshed). The UPDATE is guarded by the row's state and attempts as
    read, so a concurrent change still raises ``StaleState``.

    Raises:
        IllegalTransition, StaleState.
    """
    now = resolve_now(now)
    to = enum_value(AlertState, to, "alert state")
    alert_id = row.id
    if expected is not None and row.state != expected:
        raise StaleState(f"alert {alert_id} is {row.state}, expected {expected}")
    if to not in ALERT_TRANSITIONS[row.state]:
        raise IllegalTransition(f"alert {alert_id}: {row.state} → {to} is not allowed")
    values: dict[str, Any] = {"state": to, "updated_at": now}
    if to in (AlertState.SENT, AlertState.FAILED):
        values["attempts"] = row.attempts + 1
    if to == AlertState.SENT:
        values.update(sent_at=now, last_error=None)
    if to == AlertState.FAILED:
        values["last_error"] = error or "delivery failed"
    if to == AlertState.PENDING and row.state != AlertState.FAILED:
        values["attempts"] = 0
    if cooldown_until is not None:
        values["cooldown_until"] = as_utc(cooldown_until)
    if level is not None:
        values["level"] = level
    t = table_of(AlertRow)
    res = session.execute(
        sa.update(t).where(t.c.id == alert_id, t.c.state == row.state, t.c.attempts == row.attempts).values(**values)
    )
    if rowcount(res) != 1:
        raise StaleState(f"alert {alert_id} changed concurrently")


_CHUNK = 500  # rows per multi-row statement (well under every driver's bound-parameter limit)


def insert_alerts(session: Session, rows: Sequence[tuple[str, str, str]], *,
                  now: datetime | None = None) -> set[tuple[str, str]]:
    """Create a ``pending`` alert for each ``(finding_key, channel, level)`` that has none, as
    :func:`ensure_alert` would, with one multi-row INSERT ... ON CONFLICT DO NOTHING per 500 rows
    (ids follow the order given). Returns the ``(finding_key, channel)`` pairs this call created;
    the others already existed. Safe under concurrency; repeated pairs are created once."""
    now = resolve_now(now)
    t = table_of(AlertRow)
    values = []
    seen: set[tuple[str, str]] = set()
    for key, channel, level in rows:
        pair = (required(key, "finding_key"), required(channel, "channel"))
        if pair in seen:
            continue
        seen.add(pair)
        values.append({"finding_key": key, "channel": channel, "level": level, "state": AlertState.PENDING.value,
                       "attempts": 0, "created_at": now, "updated_at": now})
    created: set[tuple[str, str]] = set()
    for i in range(0, len(values), _CHUNK):
        stmt = upsert_insert(session, t).values(values[i:i + _CHUNK]).on_conflict_do_nothing() \
            .returning(t.c.finding_key, t.c.channel)
        created.update((k, c) for k, c in session.execute(stmt))
    return created


def alerts_for(session: Session, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], AlertRow]:
    """The alerts of these ``(finding_key, channel)`` pairs that exist, read fresh (one SELECT per
    500 finding keys)."""
    wanted = set(pairs)
    keys = sorted({k for k, _ in wanted})
    t = table_of(AlertRow)
    out: dict[tuple[str, str], AlertRow] = {}
    for i in range(0, len(keys), _CHUNK):
        stmt = sa.select(AlertRow).where(t.c.finding_key.in_(keys[i:i + _CHUNK]))
        for row in session.execute(stmt.execution_options(populate_existing=True)).scalars():
            if (row.finding_key, row.channel) in wanted:
                out[(row.finding_key, row.channel)] = row
    return out


def alerts_in_state(session: Session, *states: str) -> list[AlertRow]:
    t = table_of(AlertRow)
    wanted = [enum_value(AlertState, s, "alert state") for s in states] or [AlertState.PENDING.value]
    stmt = sa.select(AlertRow).where(t.c.state.in_(wanted)).order_by(t.c.id)
    return list(session.execute(stmt).scalars())
