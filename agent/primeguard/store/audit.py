"""The hash-chained audit log.

Entry ``n`` stores ``hash = sha256(canonical_json({seq, time, actor, kind, subject, payload, prev_hash}))``
with ``prev_hash`` = entry ``n-1``'s hash (:data:`GENESIS_HASH` for entry 1). The single ``audit_head``
row holds the last ``(seq, hash)``:

* :func:`append` runs inside the caller's transaction, so an audit entry commits or rolls back with
  the thing it records. It locks the head row first (``SELECT ... FOR UPDATE`` on PostgreSQL; on
  SQLite the write session's ``BEGIN IMMEDIATE`` already holds the database's write lock), so
  concurrent appenders queue up and the chain never forks.
* :func:`verify` walks the chain in one read snapshot and reports the first broken entry: an edited
  entry (hash mismatch), a deleted or reordered entry (seq gap / prev_hash mismatch), entries removed
  from the end (head mismatch). It then checks every row that records an audit entry (decisions,
  withdrawals, approvals, playbook actions, policy versions, users: the table-driven mapping in
  :mod:`primeguard.store.evidence`) against the chain: a row whose entry is missing (the log was
  truncated, rolled back or deleted, head and all) or whose content differs from it fails, with
  the table, the row id and the reason. Given external anchors, the chain must contain each
  anchored (seq, hash). It never raises.

A hash chain detects tampering by anyone who does not also rewrite every later hash and the head;
an operator with full write access can rebuild the whole chain. :mod:`primeguard.store.anchors`
publishes the head (seq, hash, time) outside the database; ``verify(anchors=...)`` checks it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from primeguard.domain.errors import StoreError
from primeguard.store._sql import insert_ignore, rowcount, table_of
from primeguard.store.codec import canonical_json, iso, sha256_hex, store_json, utcnow
from primeguard.store.evidence import DECISION_KIND, EntryIndex, Problem, cross_check, decision_digest
from primeguard.store.tables import AuditHeadRow, AuditRow

__all__ = ["DECISION_KIND", "GENESIS_HASH", "Anchor", "AuditEntry", "Problem", "VerifyResult", "append",
           "decision_digest", "entries", "entry_hash", "head", "head_time", "lock_head", "verify"]

GENESIS_HASH = "0" * 64

_log = table_of(AuditRow)
_head = table_of(AuditHeadRow)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: datetime
    actor: str
    kind: str
    subject: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of :func:`verify`. ``first_broken_seq`` and ``reason`` are None when ``ok``.

    ``problems`` lists everything found (each: table, row id, reason, seq when known), at most
    :data:`MAX_PROBLEMS` of them (``problems_total`` counts all); ``reason`` is the first one's.
    ``anchors_checked`` counts the external anchors compared with the chain.
    """

    ok: bool
    checked: int
    head_seq: int | None
    first_broken_seq: int | None = None
    reason: str | None = None
    problems: tuple[Problem, ...] = ()
    problems_total: int = 0
    anchors_checked: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "checked": self.checked, "head_seq": self.head_seq,
            "first_broken_seq": self.first_broken_seq, "reason": self.reason,
            "problems": [p.as_dict() for p in self.problems], "problems_total": self.problems_total,
            "anchors_checked": self.anchors_checked,
        }


@dataclass(frozen=True, slots=True)
class Anchor:
    """A chain head published outside the database: entry ``seq`` had ``hash``. ``source`` says
    where it was read (``file:line``)."""

    seq: int
    hash: str
    source: str = ""


MAX_PROBLEMS = 1000


def entry_hash(
    seq: int, at: datetime, actor: str, kind: str, subject: str, payload: Any, prev_hash: str
) -> str:
    """The hash of one entry (the definition; never change it without a chain migration)."""
    body = {
        "seq": seq, "time": iso(at), "actor": actor, "kind": kind, "subject": subject,
        "payload": payload, "prev_hash": prev_hash,
    }
    return sha256_hex(canonical_json(body))


def lock_head(session: Session) -> tuple[int, str]:
    """Lock the chain head for this transaction and return ``(seq, hash)`` of the last entry.

    Taking this lock first serialises other work against audit appends (e.g. policy activation).
    """
    stmt = sa.select(_head.c.seq, _head.c.hash).where(_head.c.id == 1).with_for_update()
    row = session.execute(stmt).first()
    if row is None:
        insert_ignore(session, _head, {"id": 1, "seq": 0, "hash": GENESIS_HASH})
        row = session.execute(stmt).first()
        if row is None:  # pragma: no cover - the insert above guarantees a row
            raise StoreError("audit head row missing and could not be created")
    return int(row.seq), str(row.hash)


def append(
    session: Session,
    *,
    actor: str,
    kind: str,
    subject: str,
    payload: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditEntry:
    """Append one entry inside the caller's transaction (commit together or not at all).

    ``payload`` is normalised (:func:`codec.jsonable`: no floats, Decimals as strings) and sensitive
    keys are masked; masked paths are listed under ``"_masked"``.

    Raises:
        StoreError: the payload cannot be stored, or the database refused.
    """
    if not actor or not kind:
        raise StoreError("audit entries need an actor and a kind")
    body, masked = store_json(dict(payload or {}))
    if masked:
        body["_masked"] = masked
    prev_seq, prev_hash = lock_head(session)
    seq = prev_seq + 1
    at = now or utcnow()  # taken after the lock: times follow seq order
    digest = entry_hash(seq, at, actor, kind, subject, body, prev_hash)
    session.execute(
        sa.insert(_log).values(
            seq=seq, at=at, actor=actor, kind=kind, subject=subject, payload=body, prev_hash=prev_hash, hash=digest
        )
    )
    updated = session.execute(
        sa.update(_head).where(_head.c.id == 1, _head.c.seq == prev_seq).values(seq=seq, hash=digest)
    )
    if rowcount(updated) != 1:  # pragma: no cover - the row lock makes this impossible
        raise StoreError("audit head moved under a held lock")
    return AuditEntry(seq, at, actor, kind, subject, body, prev_hash, digest)


def head(session: Session) -> tuple[int, str]:
    """``(seq, hash)`` of the last entry, without locking (``(0, GENESIS_HASH)`` when empty)."""
    row = session.execute(sa.select(_head.c.seq, _head.c.hash).where(_head.c.id == 1)).first()
    return (int(row.seq), str(row.hash)) if row else (0, GENESIS_HASH)


def head_time(session: Session, seq: int) -> datetime | None:
    """The time of entry ``seq`` (None when there is no such entry)."""
    row = session.execute(sa.select(_log.c.at).where(_log.c.seq == seq)).first()
    return None if row is None else row.at


def entries(
    session: Session, *, after_seq: int = 0, limit: int = 100, kind: str | None = None, subject: str | None = None
) -> list[AuditEntry]:
    """Entries in seq order (for ``audit`` listings and the dashboard)."""
    stmt = sa.select(_log).where(_log.c.seq > after_seq).order_by(_log.c.seq).limit(limit)
    if kind:
        stmt = stmt.where(_log.c.kind == kind)
    if subject:
        stmt = stmt.where(_log.c.subject == subject)
    return [_entry(r) for r in session.execute(stmt)]


def verify(store: Any, *, batch: int = 2000, anchors: Sequence[Anchor] = ()) -> VerifyResult:
    """Check the whole chain, every row that points into it, and the given external anchors.
    Never raises.

    One pass over the chain in seq order checks each entry's hash and link and the head, and
    indexes the entries rows are checked against (:mod:`primeguard.store.evidence`); then each
    table with audited rows is read once. Linear in entries plus rows.

    Args:
        store: a :class:`primeguard.store.db.Store`.
        batch: rows read per query.
        anchors: heads published earlier (:mod:`primeguard.store.anchors`); the chain must contain
            every one of them, so a truncated tail or a rewritten history fails.
    """
    checked = 0
    head_seq: int | None = None
    by_seq: dict[int, list[Anchor]] = {}
    for a in anchors:
        by_seq.setdefault(a.seq, []).append(a)
    anchors_checked = 0

    def result(problems: list[Problem], first: int | None = None) -> VerifyResult:
        if not problems:
            return VerifyResult(True, checked, head_seq, anchors_checked=anchors_checked)
        lead = problems[0]
        return VerifyResult(False, checked, head_seq, first if first is not None else lead.seq, lead.reason,
                            tuple(problems[:MAX_PROBLEMS]), len(problems), anchors_checked)

    try:
        with store.session(readonly=True) as session:
            head_seq, head_hash = head(session)
            index = EntryIndex()
            anchor_problems: list[Problem] = []
            for a in by_seq.get(0, ()):
                anchors_checked += 1
                if a.hash != GENESIS_HASH:
                    anchor_problems.append(_anchor_rewritten(a, GENESIS_HASH))
            expected_seq, prev = 1, GENESIS_HASH
            last = 0
            while True:
                rows = session.execute(
                    sa.select(_log).where(_log.c.seq > last).order_by(_log.c.seq).limit(batch)
                ).all()
                if not rows:
                    break
                for r in rows:
                    why: str | None = None
                    if r.seq != expected_seq:
                        why = (f"entry {expected_seq} is missing (next entry is {r.seq})" if r.seq > expected_seq
                               else f"entry {r.seq} is out of order")
                        broken = expected_seq
                    elif r.prev_hash != prev:
                        why = (f"entry {r.seq} does not link to entry {r.seq - 1} (prev_hash differs): "
                               "an entry was removed, replaced or reordered")
                        broken = r.seq
                    elif entry_hash(r.seq, r.at, r.actor, r.kind, r.subject, r.payload, r.prev_hash) != r.hash:
                        why = f"entry {r.seq} ({r.kind}) was modified: its content does not match its hash"
                        broken = r.seq
                    if why is not None:
                        return result([Problem("audit_log", str(broken), why, broken), *anchor_problems], broken)
                    for a in by_seq.get(r.seq, ()):
                        anchors_checked += 1
                        if a.hash != r.hash:
                            anchor_problems.append(_anchor_rewritten(a, r.hash))
                    index.add(r.seq, r.actor, r.kind, r.subject, r.payload)
                    checked += 1
                    prev, expected_seq, last = r.hash, r.seq + 1, r.seq
            for seq in sorted(s for s in by_seq if s > last):
                for a in by_seq[seq]:
                    anchors_checked += 1
                    anchor_problems.append(Problem(
                        "anchor", a.source or str(a.seq),
                        f"the anchor at {a.source or '?'} records entry {a.seq} but the chain ends at entry {last}: "
                        "entries after it were removed (tail truncated) or the chain was rebuilt", a.seq))
            problems: list[Problem] = []
            if (last, prev) != (head_seq, head_hash):
                if last < head_seq:
                    why = (f"the log ends at entry {last} but the head records {head_seq}: "
                           "entries were removed from the end")
                else:
                    why = f"the head records entry {head_seq} but the log continues to {last}: the head was altered"
                problems.append(Problem("audit_head", "1", why, min(last, head_seq) + 1))
            problems.extend(anchor_problems)
            rows_wrong = sorted(cross_check(session, index, batch=batch),
                                key=lambda p: (p.seq is None, p.seq or 0, p.table, p.row_id))
            problems.extend(rows_wrong)
            return result(problems)
    except Exception as exc:  # verify reports; it never raises
        why = f"could not read the audit log: {type(exc).__name__}: {exc}"
        return VerifyResult(False, checked, head_seq, None, why, (Problem("audit_log", "-", why),), 1,
                            anchors_checked)


def _anchor_rewritten(a: Anchor, actual: str) -> Problem:
    return Problem("anchor", a.source or str(a.seq),
                   f"the anchor at {a.source or '?'} records entry {a.seq} with hash {a.hash[:16]}… but the chain's "
                   f"entry {a.seq} has {actual[:16]}…: history up to the anchor was rewritten", a.seq)


def _entry(r: Any) -> AuditEntry:
    return AuditEntry(r.seq, r.at, r.actor, r.kind, r.subject, r.payload, r.prev_hash, r.hash)

