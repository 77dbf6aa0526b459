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
  from the end (head mismatch), and a decision row changed after it was recorded (digest mismatch).
  It never raises.

A hash chain detects tampering by anyone who does not also rewrite every later hash and the head;
an operator with full write access can rebuild the whole chain. Ship :func:`head` (seq, hash) to an
external system (log, ticket, chat) regularly to anchor it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from primeguard.domain.errors import StoreError
from primeguard.store._sql import insert_ignore, rowcount, table_of
from primeguard.store.codec import canonical_json, iso, sha256_hex, store_json, utcnow
from primeguard.store.tables import AuditHeadRow, AuditRow, DecisionRow

GENESIS_HASH = "0" * 64
DECISION_KIND = "decision.recorded"

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
    """Outcome of :func:`verify`. ``first_broken_seq`` and ``reason`` are None when ``ok``."""

    ok: bool
    checked: int
    head_seq: int | None
    first_broken_seq: int | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "checked": self.checked, "head_seq": self.head_seq,
            "first_broken_seq": self.first_broken_seq, "reason": self.reason,
        }


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


def decision_digest(row: DecisionRow) -> str:
    """Digest binding a decision row's content to its audit entry."""
    body = {
        "id": row.id, "kind": row.kind, "subject": row.subject, "outcome": row.outcome,
        "reasons": list(row.reasons), "rule_ids": list(row.rule_ids), "shadow": list(row.shadow),
        "approvals_required": row.approvals_required, "explanation": row.explanation,
        "policy_hash": row.policy_hash, "input": row.input, "masked_fields": list(row.masked_fields),
        "actor": row.actor, "decided_at": iso(row.decided_at),
    }
    return sha256_hex(canonical_json(body))


def verify(store: Any, *, batch: int = 2000) -> VerifyResult:
    """Check the whole chain (and decision rows against their entries). Never raises.

    Args:
        store: a :class:`primeguard.store.db.Store`.
        batch: rows read per query.
    """
    checked = 0
    head_seq: int | None = None
    try:
        with store.session(readonly=True) as session:
            head_seq, head_hash = head(session)
            expected_seq, prev = 1, GENESIS_HASH
            last = 0
            while True:
                rows = session.execute(
                    sa.select(_log).where(_log.c.seq > last).order_by(_log.c.seq).limit(batch)
                ).all()
                if not rows:
                    break
                decision_checks: dict[str, tuple[int, str]] = {}
                for r in rows:
                    if r.seq != expected_seq:
                        why = (f"entry {expected_seq} is missing (next entry is {r.seq})" if r.seq > expected_seq
                               else f"entry {r.seq} is out of order")
                        return VerifyResult(False, checked, head_seq, expected_seq, why)
                    if r.prev_hash != prev:
                        return VerifyResult(False, checked, head_seq, r.seq,
                                            f"entry {r.seq} does not link to entry {r.seq - 1} (prev_hash differs): "
                                            "an entry was removed, replaced or reordered")
                    recomputed = entry_hash(r.seq, r.at, r.actor, r.kind, r.subject, r.payload, r.prev_hash)
                    if recomputed != r.hash:
                        why = f"entry {r.seq} ({r.kind}) was modified: its content does not match its hash"
                        return VerifyResult(False, checked, head_seq, r.seq, why)
                    if r.kind == DECISION_KIND and isinstance(r.payload, dict):
                        decision_checks[str(r.payload.get("decision_id"))] = (r.seq, str(r.payload.get("digest")))
                    checked += 1
                    prev, expected_seq, last = r.hash, r.seq + 1, r.seq
                broken = _check_decisions(session, decision_checks)
                if broken:
                    return VerifyResult(False, checked, head_seq, broken[0], broken[1])
            if (last, prev) != (head_seq, head_hash):
                if last < head_seq:
                    why = (f"the log ends at entry {last} but the head records {head_seq}: "
                           "entries were removed from the end")
                else:
                    why = f"the head records entry {head_seq} but the log continues to {last}: the head was altered"
                return VerifyResult(False, checked, head_seq, min(last, head_seq) + 1, why)
            return VerifyResult(True, checked, head_seq)
    except Exception as exc:  # verify reports; it never raises
        why = f"could not read the audit log: {type(exc).__name__}: {exc}"
        return VerifyResult(False, checked, head_seq, None, why)


def _check_decisions(session: Session, wanted: dict[str, tuple[int, str]]) -> tuple[int, str] | None:
    if not wanted:
        return None
    stmt = sa.select(DecisionRow).where(table_of(DecisionRow).c.id.in_(list(wanted)))
    rows = {r.id: r for r in session.execute(stmt).scalars()}
    for decision_id, (seq, digest) in sorted(wanted.items(), key=lambda kv: kv[1][0]):
        row = rows.get(decision_id)
        if row is None:
            return seq, f"decision {decision_id} recorded by entry {seq} is missing from the decisions table"
        if decision_digest(row) != digest:
            return seq, f"decision {decision_id} (entry {seq}) was changed after it was recorded"
    return None


def _entry(r: Any) -> AuditEntry:
    return AuditEntry(r.seq, r.at, r.actor, r.kind, r.subject, r.payload, r.prev_hash, r.hash)

