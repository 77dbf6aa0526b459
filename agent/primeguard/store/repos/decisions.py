"""Decisions: every policy decision logged with its audit entry and masked input.

Contract (session first, nothing commits, audit entry in the same transaction, ``now`` passed in):
see :mod:`primeguard.store.repos`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from primeguard.domain.decision import Decision
from primeguard.store import audit
from primeguard.store._sql import table_of
from primeguard.store.codec import store_json
from primeguard.store.repos._helpers import get_row, required, resolve_now
from primeguard.store.tables import DecisionRow


def record_decision(
    session: Session,
    decision: Decision,
    *,
    kind: str,
    subject: str,
    input: Mapping[str, Any],  # the OPA term
    actor: str = "policy",
    decision_id: str | None = None,
    mask_paths: Sequence[str] = (),
    now: datetime | None = None,
) -> DecisionRow:
    """Log a decision and its audit entry in the caller's transaction (never one without the other).

    ``input`` is what the decision saw; sensitive keys (and ``mask_paths``) are replaced by ``***``
    and listed in ``masked_fields``.
    """
    now = resolve_now(now)
    masked_input, masked = store_json(dict(input), mask_paths)
    row = DecisionRow(
        id=decision_id or uuid.uuid4().hex, kind=required(kind, "kind"), subject=required(subject, "subject"),
        outcome=str(decision.outcome), reasons=[str(r) for r in decision.reasons],
        rule_ids=list(decision.rule_ids), shadow=list(decision.shadow),
        approvals_required=int(decision.approvals_required), explanation=decision.explanation,
        policy_hash=decision.policy_hash, input=masked_input, masked_fields=masked, actor=actor,
        decided_at=now, audit_seq=0,
    )
    entry = audit.append(session, actor=actor, kind=audit.DECISION_KIND, subject=subject, now=now, payload={
        "decision_id": row.id, "kind": kind, "outcome": row.outcome, "reasons": row.reasons,
        "rule_ids": row.rule_ids, "policy_hash": row.policy_hash, "digest": audit.decision_digest(row),
    })
    row.audit_seq = entry.seq
    session.add(row)
    session.flush()
    return row


def get_decision(session: Session, decision_id: str) -> DecisionRow | None:
    return get_row(session, DecisionRow, decision_id)


def list_decisions(session: Session, *, subject: str | None = None, kind: str | None = None,
                   limit: int = 100) -> list[DecisionRow]:
    t = table_of(DecisionRow)
    stmt = sa.select(DecisionRow)
    if subject is not None:
        stmt = stmt.where(t.c.subject == subject)
    if kind is not None:
        stmt = stmt.where(t.c.kind == kind)
    return list(session.execute(stmt.order_by(t.c.decided_at.desc(), t.c.audit_seq.desc()).limit(limit)).scalars())
