"""Findings: open/closed episodes keyed by finding key; an upsert opens or refreshes, a close ends one.

Contract (session first, nothing commits, audit entry in the same transaction, ``now`` passed in):
see :mod:`primeguard.store.repos`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from primeguard.domain.errors import InputError
from primeguard.domain.findings import Finding, FindingCode, Severity
from primeguard.store._sql import insert_ignore, table_of, upsert_insert
from primeguard.store.codec import store_json
from primeguard.store.errors import StaleState
from primeguard.store.repos._helpers import get_row, resolve_now
from primeguard.store.tables import FindingRow, FindingState


def upsert_finding(session: Session, finding: Finding, *, now: datetime | None = None) -> tuple[FindingRow, bool]:
    """Record that ``finding`` is present now. Returns ``(row, opened)``: ``opened`` is True when the
    finding is new or was closed before (a new episode: ``first_seen`` restarts)."""
    now = resolve_now(now)
    values = _values(finding)
    t = table_of(FindingRow)
    inserted = insert_ignore(session, t, {
        "key": finding.key, **values, "state": FindingState.OPEN.value, "first_seen": now, "last_seen": now,
        "closed_at": None, "occurrences": 1,
    })
    if inserted:
        row = get_row(session, FindingRow, finding.key)
        assert row is not None
        return row, True
    current = get_row(session, FindingRow, finding.key, lock=True)
    if current is None:  # pragma: no cover - deleted between the two statements
        raise StaleState(f"finding {finding.key} vanished")
    reopened = current.state == FindingState.CLOSED.value
    update: dict[str, Any] = {**values, "last_seen": now, "occurrences": current.occurrences + 1}
    if reopened:
        update.update(state=FindingState.OPEN.value, first_seen=now, closed_at=None, occurrences=1)
    session.execute(sa.update(t).where(t.c.key == finding.key).values(**update))
    row = get_row(session, FindingRow, finding.key)
    assert row is not None
    return row, reopened


def _values(finding: Finding) -> dict[str, Any]:
    details, _ = store_json(dict(finding.details))
    return {
        "code": str(finding.code), "severity": int(finding.severity), "subject": finding.subject,
        "venue": finding.venue, "chain": finding.chain, "client_id": finding.client_id,
        "rule_id": finding.rule_id, "message": finding.message, "details": details,
    }


_CHUNK = 500  # keys per IN list: well under every backend's bound-parameter limit


def upsert_findings(session: Session, findings: Iterable[Finding], *, now: datetime | None = None) -> list[str]:
    """:func:`upsert_finding` for each (same rows, same result), in a few statements: the existing
    rows are read in chunks; findings seen again unchanged get one UPDATE per chunk (``last_seen``,
    ``occurrences + 1``); only new findings (one multi-row INSERT), changed and reopened ones are
    written with their values. Returns the keys that opened (new or reopened), in input order.

    A finding given twice is upserted twice, in order (as :func:`upsert_finding` would)."""
    now = resolve_now(now)
    items = list(findings)
    if len({f.key for f in items}) != len(items):  # rare: keep the one-by-one semantics exactly
        return [f.key for f in items if upsert_finding(session, f, now=now)[1]]
    t = table_of(FindingRow)
    cols = [t.c.key, t.c.state, t.c.occurrences, *(t.c[k] for k in _VALUE_KEYS)]
    existing: dict[str, Any] = {}
    keys = [f.key for f in items]
    for i in range(0, len(keys), _CHUNK):
        stmt = sa.select(*cols).where(t.c.key.in_(keys[i:i + _CHUNK])).with_for_update()
        existing.update((r.key, r) for r in session.execute(stmt))
    opened: set[str] = set()
    new: list[dict[str, Any]] = []
    touched: list[str] = []
    rewrite: list[dict[str, Any]] = []
    for f in items:
        values = _values(f)
        row = existing.get(f.key)
        if row is None:
            new.append({"key": f.key, **values, "state": FindingState.OPEN.value, "first_seen": now,
                        "last_seen": now, "closed_at": None, "occurrences": 1})
        elif row.state == FindingState.CLOSED.value:
            opened.add(f.key)
            rewrite.append({"k": f.key, **values, "state": FindingState.OPEN.value, "first_seen": now,
                            "last_seen": now, "closed_at": None, "occurrences": 1})
        elif all(getattr(row, k) == v for k, v in values.items()):
            touched.append(f.key)
        else:
            rewrite.append({"k": f.key, **values, "last_seen": now, "occurrences": row.occurrences + 1})
    for i in range(0, len(new), _CHUNK):
        chunk = new[i:i + _CHUNK]
        stmt = upsert_insert(session, t).values(chunk).on_conflict_do_nothing().returning(t.c.key)
        inserted = {r[0] for r in session.execute(stmt)}
        opened |= inserted
        for row_values in chunk:  # inserted by someone else in between: the one-by-one path decides
            if row_values["key"] not in inserted:
                f = next(x for x in items if x.key == row_values["key"])
                if upsert_finding(session, f, now=now)[1]:
                    opened.add(f.key)
    for i in range(0, len(touched), _CHUNK):
        session.execute(sa.update(t).where(t.c.key.in_(touched[i:i + _CHUNK]))
                        .values(last_seen=now, occurrences=t.c.occurrences + 1))
    for shape in {tuple(sorted(r)) for r in rewrite}:  # one executemany per column set
        batch = [{f"v_{c}": v for c, v in r.items()} for r in rewrite if tuple(sorted(r)) == shape]
        stmt = sa.update(t).where(t.c.key == sa.bindparam("v_k")).values(
            {c: sa.bindparam(f"v_{c}") for c in shape if c != "k"})
        session.execute(stmt, batch)
    return [k for k in keys if k in opened]


_VALUE_KEYS = ("code", "severity", "subject", "venue", "chain", "client_id", "rule_id", "message", "details")


def close_findings(
    session: Session,
    *,
    now: datetime | None = None,
    keys: Iterable[str] | None = None,
    except_keys: Iterable[str] | None = None,
    subjects: Iterable[str] | None = None,
    keep_venues: Iterable[str] = (),
) -> list[str]:
    """Close open findings; returns the keys closed.

    Give ``keys`` to close exactly those, or ``except_keys`` (the keys still present) to close every
    other open finding; ``subjects`` limits either form to findings about those subjects (use it when
    a sweep covered only part of the book); findings of a venue in ``keep_venues`` are never closed
    (another job owns them: :data:`~primeguard.domain.findings.JOB_VENUES`).
    """
    if (keys is None) == (except_keys is None):
        raise InputError("give exactly one of keys or except_keys")
    now = resolve_now(now)
    t = table_of(FindingRow)
    cond = [t.c.state == FindingState.OPEN.value]
    if keys is not None:
        cond.append(t.c.key.in_(list(keys)))
    if subjects is not None:
        cond.append(t.c.subject.in_(list(subjects)))
    if keep := list(keep_venues):
        cond.append(t.c.venue.not_in(keep))
    closed = [r[0] for r in session.execute(sa.select(t.c.key).where(*cond).with_for_update())]
    if except_keys is not None:  # filtered here: a sweep's keys are too many for a NOT IN list
        keep = set(except_keys)
        closed = [k for k in closed if k not in keep]
    for i in range(0, len(closed), _CHUNK):
        session.execute(
            sa.update(t).where(t.c.key.in_(closed[i:i + _CHUNK]), t.c.state == FindingState.OPEN.value)
            .values(state=FindingState.CLOSED.value, closed_at=now)
        )
    return sorted(closed)


def open_findings(session: Session, *, client_id: str | None = None) -> list[FindingRow]:
    t = table_of(FindingRow)
    stmt = sa.select(FindingRow).where(t.c.state == FindingState.OPEN.value)
    if client_id is not None:
        stmt = stmt.where(t.c.client_id == client_id)
    return list(session.execute(stmt.order_by(t.c.severity.desc(), t.c.key)).scalars())


def open_findings_of(session: Session, venues: Iterable[str]) -> list[Finding]:
    """The open findings whose ``venue`` is one of ``venues``, as :class:`Finding` values (rows
    with a code this version does not know are left out)."""
    t = table_of(FindingRow)
    stmt = sa.select(FindingRow).where(t.c.state == FindingState.OPEN.value, t.c.venue.in_(list(venues)))
    out = []
    for row in session.execute(stmt.order_by(t.c.key)).scalars():
        try:
            code, severity = FindingCode(row.code), Severity(row.severity)
        except ValueError:
            continue
        out.append(Finding(code, severity, row.subject, row.message, venue=row.venue, chain=row.chain,
                           client_id=row.client_id, rule_id=row.rule_id, details=dict(row.details or {})))
    return out


def get_finding(session: Session, key: str) -> FindingRow | None:
    return get_row(session, FindingRow, key)
