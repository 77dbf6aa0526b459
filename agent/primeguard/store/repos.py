"""Repositories: the operations the rest of primeguard performs on the store.

Every function takes an open :class:`sqlmodel.Session` (from :meth:`Store.session`) as its first
argument and works inside the caller's transaction: nothing commits here, so a state change and its
audit entry (appended here, in the same transaction) commit together or not at all.

Times: every function takes an optional aware ``now`` (default: the current UTC time); tests pass
it explicitly instead of sleeping. Money: ``Decimal`` (or numeric strings), never ``float``.

Errors: :class:`NotFound`, :class:`IllegalTransition`, :class:`StaleState` (all ``StoreError``);
:class:`~primeguard.domain.errors.ApprovalError` for four-eyes violations
(:class:`~primeguard.domain.errors.SelfApprovalError` when someone approves their own request);
:class:`~primeguard.domain.errors.InputError` for malformed arguments.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import Session

from primeguard.domain.decision import Decision
from primeguard.domain.errors import ApprovalError, InputError, SelfApprovalError
from primeguard.domain.findings import Finding
from primeguard.domain.identity import canonical_name
from primeguard.domain.money import parse_quantity
from primeguard.store import audit
from primeguard.store._sql import insert_ignore, rowcount, table_of, upsert_insert
from primeguard.store.codec import as_utc, exact_decimal, jsonable, sha256_hex, store_json, utcnow
from primeguard.store.errors import IllegalTransition, NotFound, StaleState
from primeguard.store.tables import (
    ActionMode,
    ActionRow,
    ActionState,
    AlertRow,
    AlertState,
    DecisionRow,
    FindingRow,
    FindingState,
    LeaseRow,
    MetricRow,
    PolicyState,
    PolicyVersionRow,
    Role,
    ScanCursorRow,
    SnapshotRow,
    StoreModel,
    UserRow,
    WithdrawalApprovalRow,
    WithdrawalRow,
    WithdrawalState,
)

M = TypeVar("M", bound=StoreModel)


def _now(now: datetime | None) -> datetime:
    return as_utc(now) if now is not None else utcnow()


def _table(model: type[StoreModel]) -> sa.Table:
    return table_of(model)


def _get(session: Session, model: type[M], *key: Any, lock: bool = False) -> M | None:
    """Load a row by primary key, always fresh from the database (optionally ``FOR UPDATE``)."""
    t = _table(model)
    stmt = sa.select(model).where(*(c == k for c, k in zip(t.primary_key.columns, key, strict=True)))
    if lock:
        stmt = stmt.with_for_update()
    return session.execute(stmt.execution_options(populate_existing=True)).scalar_one_or_none()


def _enum(enum: type[Any], value: Any, what: str) -> str:
    try:
        return str(enum(value).value)
    except ValueError as exc:
        allowed = ", ".join(v.value for v in enum)
        raise InputError(f"{what}: {value!r} is not one of {allowed}") from exc


def _require(value: str | None, what: str) -> str:
    if not value or not str(value).strip():
        raise InputError(f"{what} is required")
    return str(value)


def _acting_user(session: Session, user_id: int | None, what: str) -> UserRow:
    """The active user ``user_id`` (who acts on a write). Four-eyes rules compare these ids.

    Raises:
        ApprovalError: no such user, or the user is revoked.
    """
    if user_id is None:
        raise ApprovalError(f"{what}: a user id is required (identities come from tokens, not names)")
    t = _table(UserRow)
    user = session.execute(sa.select(UserRow).where(t.c.id == int(user_id))
                           .execution_options(populate_existing=True)).scalar_one_or_none()
    if user is None or user.revoked_at is not None:
        raise ApprovalError(f"{what}: user {user_id} does not exist or is revoked")
    return user


# === snapshots =======================================================================================


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
    body, masked = store_json(dict(payload))
    if masked:
        body["_masked"] = masked
    row = SnapshotRow(
        sweep_id=_require(sweep_id, "sweep_id"), account_id=_require(account_id, "account_id"), venue=venue,
        ok=bool(ok), observed_at=as_utc(observed_at), payload=body, error=error,
    )
    session.add(row)
    session.flush()
    return row


def save_snapshots(session: Session, snapshots: Iterable[Mapping[str, Any]]) -> list[SnapshotRow]:
    """:func:`save_snapshot` for each mapping of its keyword arguments."""
    return [save_snapshot(session, **dict(s)) for s in snapshots]


def latest_snapshot(session: Session, account_id: str) -> SnapshotRow | None:
    t = _table(SnapshotRow)
    stmt = sa.select(SnapshotRow).where(t.c.account_id == account_id).order_by(t.c.observed_at.desc(), t.c.id.desc())
    return session.execute(stmt.limit(1)).scalar_one_or_none()


def sweep_snapshots(session: Session, sweep_id: str) -> list[SnapshotRow]:
    t = _table(SnapshotRow)
    stmt = sa.select(SnapshotRow).where(t.c.sweep_id == sweep_id).order_by(t.c.account_id)
    return list(session.execute(stmt).scalars())


# === metric history ==================================================================================


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
    row = MetricRow(
        client_id=_require(client_id, "client_id"), at=as_utc(at), sweep_id=sweep_id,
        equity=exact_decimal(equity, what="equity"), loan=exact_decimal(loan, what="loan"),
        ltv=None if ltv is None else exact_decimal(ltv, what="ltv"), ladder_state=ladder_state,
        extra=jsonable(dict(extra or {})),
    )
    session.add(row)
    session.flush()
    return row


def metric_history(
    session: Session, client_id: str, *, since: datetime | None = None, until: datetime | None = None,
    limit: int = 10_000,
) -> list[MetricRow]:
    """A client's metrics in time order (oldest first)."""
    t = _table(MetricRow)
    stmt = sa.select(MetricRow).where(t.c.client_id == client_id)
    if since is not None:
        stmt = stmt.where(t.c.at >= as_utc(since))
    if until is not None:
        stmt = stmt.where(t.c.at <= as_utc(until))
    return list(session.execute(stmt.order_by(t.c.at, t.c.id).limit(limit)).scalars())


def latest_metric(session: Session, client_id: str) -> MetricRow | None:
    t = _table(MetricRow)
    stmt = sa.select(MetricRow).where(t.c.client_id == client_id).order_by(t.c.at.desc(), t.c.id.desc()).limit(1)
    return session.execute(stmt).scalar_one_or_none()


# === findings ========================================================================================


def upsert_finding(session: Session, finding: Finding, *, now: datetime | None = None) -> tuple[FindingRow, bool]:
    """Record that ``finding`` is present now. Returns ``(row, opened)``: ``opened`` is True when the
    finding is new or was closed before (a new episode: ``first_seen`` restarts)."""
    now = _now(now)
    details, _ = store_json(dict(finding.details))
    values = {
        "code": str(finding.code), "severity": int(finding.severity), "subject": finding.subject,
        "venue": finding.venue, "chain": finding.chain, "client_id": finding.client_id,
        "rule_id": finding.rule_id, "message": finding.message, "details": details,
    }
    t = _table(FindingRow)
    inserted = insert_ignore(session, t, {
        "key": finding.key, **values, "state": FindingState.OPEN.value, "first_seen": now, "last_seen": now,
        "closed_at": None, "occurrences": 1,
    })
    if inserted:
        row = _get(session, FindingRow, finding.key)
        assert row is not None
        return row, True
    current = _get(session, FindingRow, finding.key, lock=True)
    if current is None:  # pragma: no cover - deleted between the two statements
        raise StaleState(f"finding {finding.key} vanished")
    reopened = current.state == FindingState.CLOSED.value
    update: dict[str, Any] = {**values, "last_seen": now, "occurrences": current.occurrences + 1}
    if reopened:
        update.update(state=FindingState.OPEN.value, first_seen=now, closed_at=None, occurrences=1)
    session.execute(sa.update(t).where(t.c.key == finding.key).values(**update))
    row = _get(session, FindingRow, finding.key)
    assert row is not None
    return row, reopened


def upsert_findings(session: Session, findings: Iterable[Finding], *, now: datetime | None = None) -> list[str]:
    """:func:`upsert_finding` for each; returns the keys that opened (new or reopened)."""
    now = _now(now)
    return [f.key for f in findings if upsert_finding(session, f, now=now)[1]]


def close_findings(
    session: Session,
    *,
    now: datetime | None = None,
    keys: Iterable[str] | None = None,
    except_keys: Iterable[str] | None = None,
    subjects: Iterable[str] | None = None,
) -> list[str]:
    """Close open findings; returns the keys closed.

    Give ``keys`` to close exactly those, or ``except_keys`` (the keys still present) to close every
    other open finding; ``subjects`` limits either form to findings about those subjects (use it when
    a sweep covered only part of the book).
    """
    if (keys is None) == (except_keys is None):
        raise InputError("give exactly one of keys or except_keys")
    now = _now(now)
    t = _table(FindingRow)
    cond = [t.c.state == FindingState.OPEN.value]
    if keys is not None:
        cond.append(t.c.key.in_(list(keys)))
    else:
        keep = list(except_keys or ())
        if keep:
            cond.append(t.c.key.not_in(keep))
    if subjects is not None:
        cond.append(t.c.subject.in_(list(subjects)))
    closed = [r[0] for r in session.execute(sa.select(t.c.key).where(*cond).with_for_update())]
    if closed:
        session.execute(
            sa.update(t).where(t.c.key.in_(closed), t.c.state == FindingState.OPEN.value)
            .values(state=FindingState.CLOSED.value, closed_at=now)
        )
    return sorted(closed)


def open_findings(session: Session, *, client_id: str | None = None) -> list[FindingRow]:
    t = _table(FindingRow)
    stmt = sa.select(FindingRow).where(t.c.state == FindingState.OPEN.value)
    if client_id is not None:
        stmt = stmt.where(t.c.client_id == client_id)
    return list(session.execute(stmt.order_by(t.c.severity.desc(), t.c.key)).scalars())


def get_finding(session: Session, key: str) -> FindingRow | None:
    return _get(session, FindingRow, key)


# === alerts ==========================================================================================

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
    now = _now(now)
    t = _table(AlertRow)
    created = insert_ignore(session, t, {
        "finding_key": _require(finding_key, "finding_key"), "channel": _require(channel, "channel"), "level": level,
        "state": AlertState.PENDING.value, "attempts": 0, "created_at": now, "updated_at": now,
    })
    row = get_alert(session, finding_key=finding_key, channel=channel)
    assert row is not None
    return row, created


def get_alert(session: Session, *, finding_key: str, channel: str) -> AlertRow | None:
    t = _table(AlertRow)
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
    now = _now(now)
    to = _enum(AlertState, to, "alert state")
    row = _get(session, AlertRow, alert_id)
    if row is None:
        raise NotFound(f"alert {alert_id} not found")
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
    t = _table(AlertRow)
    res = session.execute(
        sa.update(t).where(t.c.id == alert_id, t.c.state == row.state, t.c.attempts == row.attempts).values(**values)
    )
    if rowcount(res) != 1:
        raise StaleState(f"alert {alert_id} changed concurrently")
    fresh = _get(session, AlertRow, alert_id)
    assert fresh is not None
    return fresh


def alerts_in_state(session: Session, *states: str) -> list[AlertRow]:
    t = _table(AlertRow)
    wanted = [_enum(AlertState, s, "alert state") for s in states] or [AlertState.PENDING.value]
    stmt = sa.select(AlertRow).where(t.c.state.in_(wanted)).order_by(t.c.id)
    return list(session.execute(stmt).scalars())


# === playbook actions ================================================================================

ACTION_TRANSITIONS: dict[str, frozenset[str]] = {
    ActionState.PROPOSED: frozenset(
        {ActionState.APPROVED, ActionState.EXECUTING, ActionState.DONE, ActionState.FAILED, ActionState.REJECTED}
    ),
    ActionState.APPROVED: frozenset({ActionState.EXECUTING, ActionState.FAILED, ActionState.REJECTED}),
    ActionState.EXECUTING: frozenset({ActionState.DONE, ActionState.FAILED}),
    ActionState.DONE: frozenset(),
    ActionState.FAILED: frozenset(),
    ActionState.REJECTED: frozenset(),
}


def insert_action_once(session: Session, action: ActionRow, *, actor: str = "playbook",
                       proposed_by_id: int | None = None, now: datetime | None = None) -> bool:
    """Insert a proposed action unless an action with its id exists. True when inserted.

    ``proposed_by_id``: the user who proposed it (None: the daemon's playbooks); that user can never
    approve it.

    Idempotent and safe under concurrency (``INSERT ... ON CONFLICT DO NOTHING``): the same
    deterministic action id can never produce two rows, nor two audit entries.
    """
    now = _now(now)
    state = _enum(ActionState, action.state or ActionState.PROPOSED, "action state")
    if state != ActionState.PROPOSED:
        raise InputError(f"actions are inserted as proposed, not {state}")
    params, _ = store_json(dict(action.params or {}))
    values = {
        "id": _require(action.id, "action id"), "client_id": _require(action.client_id, "client_id"),
        "kind": _require(action.kind, "kind"), "mode": _enum(ActionMode, action.mode, "action mode"),
        "state": state, "params": params, "result": None, "error": None, "approved_by": None,
        "approved_by_id": None, "proposed_by_id": proposed_by_id, "created_at": now, "updated_at": now, "version": 1,
    }
    inserted = insert_ignore(session, _table(ActionRow), values)
    if inserted:
        audit.append(session, actor=actor, kind="action.proposed", subject=action.id, now=now, payload={
            "client_id": values["client_id"], "kind": values["kind"], "mode": values["mode"], "params": params,
            "proposed_by_id": proposed_by_id,
        })
    return inserted


def get_action(session: Session, action_id: str) -> ActionRow | None:
    return _get(session, ActionRow, action_id)


def list_actions(session: Session, *, client_id: str | None = None, state: str | None = None,
                 limit: int = 100) -> list[ActionRow]:
    t = _table(ActionRow)
    stmt = sa.select(ActionRow)
    if client_id is not None:
        stmt = stmt.where(t.c.client_id == client_id)
    if state is not None:
        stmt = stmt.where(t.c.state == _enum(ActionState, state, "action state"))
    return list(session.execute(stmt.order_by(t.c.created_at.desc(), t.c.id).limit(limit)).scalars())


def transition_action(
    session: Session,
    action_id: str,
    to: str,
    *,
    expected: str,
    actor: str,
    actor_id: int | None = None,
    now: datetime | None = None,
    result: Mapping[str, Any] | None = None,
    error: str | None = None,
) -> ActionRow:
    """Move an action from ``expected`` to ``to`` (optimistic: fails if it is not in ``expected``).

    Mode rules: a ``dry_run`` action never reaches ``approved``/``executing``; a ``needs_approval``
    action must be ``approved`` before ``executing``. ``approved`` needs ``actor_id`` (an active
    user, never the action's proposer) and records its name and id as the approver.

    Raises:
        NotFound, IllegalTransition, StaleState, ApprovalError (SelfApprovalError).
    """
    now = _now(now)
    to = _enum(ActionState, to, "action state")
    expected = _enum(ActionState, expected, "expected action state")
    row = _get(session, ActionRow, action_id)
    if row is None:
        raise NotFound(f"action {action_id} not found")
    if row.state != expected:
        raise StaleState(f"action {action_id} is {row.state}, expected {expected}")
    if to not in ACTION_TRANSITIONS[row.state]:
        raise IllegalTransition(f"action {action_id}: {row.state} → {to} is not allowed")
    if row.mode == ActionMode.DRY_RUN and to in (ActionState.APPROVED, ActionState.EXECUTING):
        raise IllegalTransition(f"action {action_id} is a dry run: it is never approved or executed")
    if row.mode == ActionMode.NEEDS_APPROVAL and row.state == ActionState.PROPOSED and to == ActionState.EXECUTING:
        raise IllegalTransition(f"action {action_id} needs approval before it executes")
    values: dict[str, Any] = {"state": to, "updated_at": now, "version": row.version + 1}
    if to == ActionState.APPROVED:
        user = _acting_user(session, actor_id, f"approving action {action_id}")
        if row.proposed_by_id is not None and row.proposed_by_id == user.id:
            raise SelfApprovalError(f"{user.name} proposed action {action_id} and cannot approve it")
        actor = user.name
        values["approved_by"] = user.name
        values["approved_by_id"] = user.id
    if result is not None:
        values["result"] = store_json(dict(result))[0]
    if error is not None:
        values["error"] = error
    t = _table(ActionRow)
    res = session.execute(
        sa.update(t).where(t.c.id == action_id, t.c.state == expected, t.c.version == row.version).values(**values)
    )
    if rowcount(res) != 1:
        raise StaleState(f"action {action_id} changed concurrently")
    audit.append(session, actor=actor, kind=f"action.{to}", subject=action_id, now=now, payload={
        "from": expected, "to": to, "result": values.get("result"), "error": error,
        **({"approver_id": values["approved_by_id"]} if to == ActionState.APPROVED else {}),
    })
    fresh = _get(session, ActionRow, action_id)
    assert fresh is not None
    return fresh


# === decisions =======================================================================================


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
    now = _now(now)
    masked_input, masked = store_json(dict(input), mask_paths)
    row = DecisionRow(
        id=decision_id or uuid.uuid4().hex, kind=_require(kind, "kind"), subject=_require(subject, "subject"),
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
    return _get(session, DecisionRow, decision_id)


def list_decisions(session: Session, *, subject: str | None = None, kind: str | None = None,
                   limit: int = 100) -> list[DecisionRow]:
    t = _table(DecisionRow)
    stmt = sa.select(DecisionRow)
    if subject is not None:
        stmt = stmt.where(t.c.subject == subject)
    if kind is not None:
        stmt = stmt.where(t.c.kind == kind)
    return list(session.execute(stmt.order_by(t.c.decided_at.desc(), t.c.audit_seq.desc()).limit(limit)).scalars())


# === policy versions =================================================================================


def policy_content_hash(content: str) -> str:
    return sha256_hex(content)


def put_policy_version(
    session: Session,
    content: str,
    *,
    proposed_by: str,
    proposed_by_id: int | None = None,
    policy_hash: str | None = None,
    fmt: str = "yaml",
    note: str | None = None,
    now: datetime | None = None,
) -> tuple[PolicyVersionRow, bool]:
    """Propose a policy version (keyed by ``policy_hash``, default sha256 of ``content``).
    Returns ``(row, created)``; proposing the same content again returns the existing row.
    ``proposed_by_id`` given: the proposer is that active user (its stored name is recorded)."""
    now = _now(now)
    if proposed_by_id is not None:
        proposed_by = _acting_user(session, proposed_by_id, "proposing a policy version").name
    digest = policy_hash or policy_content_hash(content)
    created = insert_ignore(session, _table(PolicyVersionRow), {
        "hash": digest, "content": content, "format": fmt, "state": PolicyState.PROPOSED.value, "note": note,
        "proposed_by": _require(proposed_by, "proposed_by"), "proposed_by_id": proposed_by_id, "proposed_at": now,
    })
    if created:
        audit.append(session, actor=proposed_by, kind="policy.proposed", subject=digest, now=now,
                     payload={"hash": digest, "format": fmt, "note": note, "size": len(content),
                              "proposed_by_id": proposed_by_id})
    row = _get(session, PolicyVersionRow, digest)
    assert row is not None
    return row, created


def get_policy_version(session: Session, policy_hash: str) -> PolicyVersionRow | None:
    return _get(session, PolicyVersionRow, policy_hash)


def get_active_policy(session: Session) -> PolicyVersionRow | None:
    t = _table(PolicyVersionRow)
    return session.execute(
        sa.select(PolicyVersionRow).where(t.c.state == PolicyState.ACTIVE.value)
    ).scalar_one_or_none()


def list_policy_versions(session: Session, *, limit: int = 100) -> list[PolicyVersionRow]:
    t = _table(PolicyVersionRow)
    return list(session.execute(sa.select(PolicyVersionRow).order_by(t.c.proposed_at.desc()).limit(limit)).scalars())


def approve_policy_version(session: Session, policy_hash: str, *, approver_id: int,
                           now: datetime | None = None) -> PolicyVersionRow:
    """``proposed`` → ``approved`` by the active user ``approver_id``. Four eyes by user id: the
    proposer cannot approve (for versions proposed before ids were recorded: by canonical name).

    Raises:
        NotFound, IllegalTransition, ApprovalError (SelfApprovalError).
    """
    now = _now(now)
    row = _get(session, PolicyVersionRow, policy_hash, lock=True)
    if row is None:
        raise NotFound(f"policy version {policy_hash} not found")
    if row.state != PolicyState.PROPOSED:
        raise IllegalTransition(
            f"policy version {policy_hash[:12]} is {row.state}; only proposed versions can be approved"
        )
    user = _acting_user(session, approver_id, f"approving policy version {policy_hash[:12]}")
    approver = user.name
    same = (row.proposed_by_id == user.id if row.proposed_by_id is not None
            else canonical_name(row.proposed_by) == user.name_key)
    if same:
        raise SelfApprovalError(f"{approver} proposed policy version {policy_hash[:12]} and cannot approve it")
    t = _table(PolicyVersionRow)
    session.execute(sa.update(t).where(t.c.hash == policy_hash).values(
        state=PolicyState.APPROVED.value, approved_by=approver, approved_by_id=user.id, approved_at=now))
    audit.append(session, actor=approver, kind="policy.approved", subject=policy_hash, now=now,
                 payload={"hash": policy_hash, "proposed_by": row.proposed_by, "proposed_by_id": row.proposed_by_id,
                          "approver_id": user.id, "role": user.role})
    fresh = _get(session, PolicyVersionRow, policy_hash)
    assert fresh is not None
    return fresh


def reject_policy_version(session: Session, policy_hash: str, *, actor: str, reason: str = "",
                          now: datetime | None = None) -> PolicyVersionRow:
    now = _now(now)
    row = _get(session, PolicyVersionRow, policy_hash, lock=True)
    if row is None:
        raise NotFound(f"policy version {policy_hash} not found")
    if row.state not in (PolicyState.PROPOSED, PolicyState.APPROVED):
        raise IllegalTransition(f"policy version {policy_hash[:12]} is {row.state}; it cannot be rejected")
    t = _table(PolicyVersionRow)
    session.execute(sa.update(t).where(t.c.hash == policy_hash).values(state=PolicyState.REJECTED.value))
    audit.append(session, actor=actor, kind="policy.rejected", subject=policy_hash, now=now,
                 payload={"hash": policy_hash, "reason": reason})
    fresh = _get(session, PolicyVersionRow, policy_hash)
    assert fresh is not None
    return fresh


def activate_policy_version(session: Session, policy_hash: str, *, actor: str,
                            now: datetime | None = None) -> PolicyVersionRow:
    """Make an approved (or previously active, now retired) version the single active one; the
    current active version is retired. Serialised through the audit head lock.

    Raises:
        NotFound, IllegalTransition (not approved).
    """
    now = _now(now)
    audit.lock_head(session)  # one activation at a time (the append below takes the same lock)
    row = _get(session, PolicyVersionRow, policy_hash, lock=True)
    if row is None:
        raise NotFound(f"policy version {policy_hash} not found")
    if row.state == PolicyState.ACTIVE:
        return row
    if row.state not in (PolicyState.APPROVED, PolicyState.RETIRED) or row.approved_by is None:
        raise IllegalTransition(f"policy version {policy_hash[:12]} is {row.state}; approve it before activating")
    t = _table(PolicyVersionRow)
    previous = get_active_policy(session)
    if previous is not None:
        session.execute(sa.update(t).where(t.c.hash == previous.hash).values(
            state=PolicyState.RETIRED.value, retired_at=now))
    session.execute(sa.update(t).where(t.c.hash == policy_hash).values(
        state=PolicyState.ACTIVE.value, activated_at=now, retired_at=None))
    audit.append(session, actor=actor, kind="policy.activated", subject=policy_hash, now=now,
                 payload={"hash": policy_hash, "previous": previous.hash if previous else None})
    fresh = _get(session, PolicyVersionRow, policy_hash)
    assert fresh is not None
    return fresh


# === withdrawals =====================================================================================

WITHDRAWAL_TRANSITIONS: dict[str, frozenset[str]] = {
    WithdrawalState.REQUESTED: frozenset({WithdrawalState.APPROVED, WithdrawalState.DENIED, WithdrawalState.FAILED}),
    WithdrawalState.APPROVED: frozenset(
        {WithdrawalState.SIGNED, WithdrawalState.BROADCAST, WithdrawalState.DENIED, WithdrawalState.FAILED}
    ),
    WithdrawalState.SIGNED: frozenset({WithdrawalState.BROADCAST, WithdrawalState.FAILED}),
    WithdrawalState.BROADCAST: frozenset({WithdrawalState.CONFIRMED, WithdrawalState.FAILED}),
    WithdrawalState.DENIED: frozenset(),
    WithdrawalState.CONFIRMED: frozenset(),
    WithdrawalState.FAILED: frozenset(),
}
ACTIVE_WITHDRAWAL_STATES: tuple[str, ...] = tuple(
    s.value for s in WithdrawalState if s not in (WithdrawalState.DENIED, WithdrawalState.FAILED)
)
_HASH32 = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


def create_withdrawal(
    session: Session,
    *,
    client_id: str,
    account_id: str,
    venue: str,
    asset: str,
    amount: Decimal | int | str,
    destination: str,
    requested_by_id: int,
    approval_digest: str,
    chain: str | None = None,
    memo: str | None = None,
    withdrawal_id: str | None = None,
    now: datetime | None = None,
) -> WithdrawalRow:
    """Record a withdrawal request (state ``requested``) by the active user ``requested_by_id`` and
    its audit entry. ``approval_digest`` (computed by custody from the request: account, chain, asset,
    base units, destination) is stored on the row and in the audit entry; every approval must carry
    it, and execution recomputes it.

    Raises:
        InputError (bad amount or digest), ApprovalError (unknown or revoked user).
    """
    now = _now(now)
    requested_by = _acting_user(session, requested_by_id, "requesting a withdrawal").name
    if not _HASH32.match(approval_digest or ""):
        raise InputError("approval_digest must be a sha256 hex digest")
    value = exact_decimal(amount, what="withdrawal amount")
    if value <= 0:
        raise InputError(f"withdrawal amount must be positive, got {str(value)[:40]}")
    value = parse_quantity(value, what="withdrawal amount")  # bounded exponent and size: renders safely
    row = WithdrawalRow(
        id=withdrawal_id or uuid.uuid4().hex, client_id=_require(client_id, "client_id"),
        account_id=_require(account_id, "account_id"), venue=_require(venue, "venue"), chain=chain,
        asset=_require(asset, "asset"), amount=format(value, "f"), destination=_require(destination, "destination"),
        memo=memo, state=WithdrawalState.REQUESTED.value, requested_by=requested_by,
        requested_by_id=requested_by_id, approval_digest=approval_digest,
        requested_at=now, updated_at=now, decision_ids=[], version=1,
    )
    session.add(row)
    session.flush()
    audit.append(session, actor=requested_by, kind="withdrawal.requested", subject=row.id, now=now, payload={
        "client_id": client_id, "account_id": account_id, "venue": venue, "chain": chain, "asset": asset,
        "amount": row.amount, "destination": destination, "memo": memo, "requested_by_id": requested_by_id,
        "digest": approval_digest,
    })
    return row


def get_withdrawal(session: Session, withdrawal_id: str) -> WithdrawalRow | None:
    return _get(session, WithdrawalRow, withdrawal_id)


def list_withdrawals(session: Session, *, client_id: str | None = None, state: str | None = None,
                     limit: int = 100) -> list[WithdrawalRow]:
    t = _table(WithdrawalRow)
    stmt = sa.select(WithdrawalRow)
    if client_id is not None:
        stmt = stmt.where(t.c.client_id == client_id)
    if state is not None:
        stmt = stmt.where(t.c.state == _enum(WithdrawalState, state, "withdrawal state"))
    return list(session.execute(stmt.order_by(t.c.requested_at.desc(), t.c.id).limit(limit)).scalars())


def withdrawn_total(
    session: Session, *, client_id: str, asset: str, since: datetime,
    states: Sequence[str] = ACTIVE_WITHDRAWAL_STATES, exclude_id: str | None = None,
) -> Decimal:
    """Exact sum of a client's withdrawals of ``asset`` requested since ``since`` (velocity limits).
    By default every request that is not denied or failed counts, pending ones included."""
    t = _table(WithdrawalRow)
    stmt = sa.select(t.c.amount).where(
        t.c.client_id == client_id, t.c.asset == asset, t.c.requested_at >= as_utc(since), t.c.state.in_(list(states))
    )
    if exclude_id is not None:
        stmt = stmt.where(t.c.id != exclude_id)
    return sum((Decimal(a) for (a,) in session.execute(stmt)), Decimal(0))


def transition_withdrawal(
    session: Session,
    withdrawal_id: str,
    to: str,
    *,
    actor: str,
    now: datetime | None = None,
    expected: str | None = None,
    decision_id: str | None = None,
    tx_hash: str | None = None,
    nonce: int | None = None,
    signed_tx_hash: str | None = None,
    external_id: str | None = None,
    error: str | None = None,
) -> WithdrawalRow:
    """Move a withdrawal along its lifecycle, with its audit entry::

        requested → approved | denied | failed
        approved  → signed | broadcast (venue withdraw) | denied | failed
        signed    → broadcast | failed
        broadcast → confirmed | failed          (denied, confirmed, failed are final)

    ``signed`` needs ``signed_tx_hash`` (the 32-byte hash of the signed transaction, never the raw
    transaction); ``broadcast``/``confirmed`` need a ``tx_hash`` or ``external_id`` (now or before);
    ``failed`` needs ``error``; ``denied`` needs ``decision_id`` or ``error``.

    Raises:
        NotFound, IllegalTransition, StaleState (``expected`` differs, or a concurrent change).
    """
    now = _now(now)
    to = _enum(WithdrawalState, to, "withdrawal state")
    row = _get(session, WithdrawalRow, withdrawal_id)
    if row is None:
        raise NotFound(f"withdrawal {withdrawal_id} not found")
    if expected is not None and row.state != expected:
        raise StaleState(f"withdrawal {withdrawal_id} is {row.state}, expected {expected}")
    if to not in WITHDRAWAL_TRANSITIONS[row.state]:
        allowed = ", ".join(sorted(WITHDRAWAL_TRANSITIONS[row.state])) or "none (final state)"
        raise IllegalTransition(f"withdrawal {withdrawal_id}: {row.state} → {to} is not allowed (allowed: {allowed})")
    if signed_tx_hash is not None and not _HASH32.match(signed_tx_hash):
        raise InputError("signed_tx_hash must be a 32-byte hex hash (store the hash, never the raw transaction)")
    if to == WithdrawalState.SIGNED and signed_tx_hash is None:
        raise InputError("a signed withdrawal needs signed_tx_hash")
    if to in (WithdrawalState.BROADCAST, WithdrawalState.CONFIRMED) and not (
        tx_hash or external_id or row.tx_hash or row.external_id
    ):
        raise InputError(f"a {to} withdrawal needs tx_hash or external_id")
    if to == WithdrawalState.FAILED and not error:
        raise InputError("a failed withdrawal needs an error")
    if to == WithdrawalState.DENIED and not (decision_id or error):
        raise InputError("a denied withdrawal needs decision_id or error")
    values: dict[str, Any] = {"state": to, "updated_at": now, "version": row.version + 1}
    for name, value in (("tx_hash", tx_hash), ("nonce", nonce), ("signed_tx_hash", signed_tx_hash),
                        ("external_id", external_id), ("error", error)):
        if value is not None:
            values[name] = value
    if decision_id is not None:
        values["decision_ids"] = [*row.decision_ids, decision_id]
    t = _table(WithdrawalRow)
    res = session.execute(
        sa.update(t).where(t.c.id == withdrawal_id, t.c.state == row.state, t.c.version == row.version)
        .values(**values)
    )
    if rowcount(res) != 1:
        raise StaleState(f"withdrawal {withdrawal_id} changed concurrently")
    audit.append(session, actor=actor, kind=f"withdrawal.{to}", subject=withdrawal_id, now=now, payload={
        "from": row.state, "to": to, "decision_id": decision_id, "tx_hash": tx_hash, "nonce": nonce,
        "signed_tx_hash": signed_tx_hash, "external_id": external_id, "error": error,
    })
    fresh = _get(session, WithdrawalRow, withdrawal_id)
    assert fresh is not None
    return fresh


def add_approval(session: Session, withdrawal_id: str, *, approver_id: int, digest: str,
                 now: datetime | None = None) -> WithdrawalApprovalRow:
    """Record one approval of a requested withdrawal by the active user ``approver_id`` (its name
    and role come from the store), for the request ``digest`` the approver saw.

    The audit entry's payload carries ``approver``, ``approver_id``, ``role`` and ``digest``, so the
    approval rows can be checked against the hash chain.

    Raises:
        NotFound; SelfApprovalError: the requester (same user id); ApprovalError: not ``requested``,
        unknown or revoked user, viewer role, already approved by that user, or ``digest`` is not
        the request's.
    """
    now = _now(now)
    user = _acting_user(session, approver_id, f"approving withdrawal {withdrawal_id}")
    approver, role = user.name, _enum(Role, user.role, "role")
    row = _get(session, WithdrawalRow, withdrawal_id)
    if row is None:
        raise NotFound(f"withdrawal {withdrawal_id} not found")
    if row.state != WithdrawalState.REQUESTED:
        raise ApprovalError(f"withdrawal {withdrawal_id} is {row.state}; approvals are taken only while requested")
    same = (row.requested_by_id == user.id if row.requested_by_id is not None
            else canonical_name(row.requested_by) == user.name_key)
    if same:
        raise SelfApprovalError(f"{approver} requested withdrawal {withdrawal_id} and cannot approve it")
    if role == Role.VIEWER:
        raise ApprovalError(f"{approver} is a viewer; viewers cannot approve withdrawals")
    if row.approval_digest is None or not hmac.compare_digest(str(digest), row.approval_digest):
        raise ApprovalError(f"withdrawal {withdrawal_id} changed since it was shown: the approval does not match "
                            "the request; reload and decide again")
    t = _table(WithdrawalApprovalRow)
    if not insert_ignore(session, t, {"withdrawal_id": withdrawal_id, "approver": approver, "approver_id": user.id,
                                      "role": role, "digest": digest, "approved_at": now}):
        raise ApprovalError(f"{approver} already approved withdrawal {withdrawal_id}")
    audit.append(session, actor=approver, kind="withdrawal.approval_added", subject=withdrawal_id, now=now,
                 payload={"approver": approver, "approver_id": user.id, "role": role, "digest": digest})
    stmt = sa.select(WithdrawalApprovalRow).where(t.c.withdrawal_id == withdrawal_id, t.c.approver_id == user.id)
    approval: WithdrawalApprovalRow = session.execute(stmt).scalar_one()
    return approval


def list_approvals(session: Session, withdrawal_id: str) -> list[WithdrawalApprovalRow]:
    t = _table(WithdrawalApprovalRow)
    stmt = sa.select(WithdrawalApprovalRow).where(t.c.withdrawal_id == withdrawal_id).order_by(t.c.approved_at, t.c.id)
    return list(session.execute(stmt).scalars())


# === users ===========================================================================================

TOKEN_PREFIX = "pgt_"  # noqa: S105 - a prefix, not a secret
MIN_TOKEN_LENGTH = 24


def hash_token(token: str) -> str:
    """sha256 hex of a web token. Tokens are 256-bit random values, so a fast hash is enough (no
    salt or KDF needed) and lets :func:`authenticate` find the user by hash."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _new_token(token: str | None) -> str:
    if token is None:
        return TOKEN_PREFIX + secrets.token_urlsafe(32)
    if len(token) < MIN_TOKEN_LENGTH:
        raise InputError(f"tokens must be at least {MIN_TOKEN_LENGTH} characters")
    return token


def create_user(session: Session, name: str, role: str, *, actor: str = "admin", actor_id: int | None = None,
                token: str | None = None, now: datetime | None = None) -> tuple[UserRow, str]:
    """Create a user; returns ``(user, token)``. The plain token is returned once and never stored.

    Names are stripped and must be unique after NFKC casefolding (``Tom`` and ``TOM`` are one name).

    Args:
        actor, actor_id: who creates it (for the audit entry).
        token: use this token (e.g. provisioned from a secret file) instead of a random one.

    Raises:
        InputError: bad role, bad or taken name, short token.
    """
    now = _now(now)
    role = _enum(Role, role, "role")
    key = canonical_name(name)
    name = name.strip()
    if get_user(session, name) is not None:
        raise InputError(f"a user named {name!r} exists already (names are compared case-insensitively)")
    plain = _new_token(token)
    row = UserRow(name=name, name_key=key, role=role, token_hash=hash_token(plain), created_at=now)
    session.add(row)
    session.flush()
    audit.append(session, actor=actor, kind="user.created", subject=name, now=now,
                 payload={"role": role, "user_id": row.id, "by_id": actor_id})
    return row, plain


def authenticate(session: Session, token: str | None) -> UserRow | None:
    """The active user holding ``token``, or None. Compares hashes in constant time."""
    if not token:
        return None
    digest = hash_token(token)
    t = _table(UserRow)
    row: UserRow | None = session.execute(
        sa.select(UserRow).where(t.c.token_hash == digest, t.c.revoked_at.is_(None))
    ).scalar_one_or_none()
    stored = row.token_hash if row is not None else "0" * 64
    if hmac.compare_digest(stored.encode(), digest.encode()) and row is not None:
        return row
    return None


def get_user(session: Session, name: str) -> UserRow | None:
    """The user whose canonical name equals ``name``'s (None when none, or ``name`` is not a valid name)."""
    try:
        key = canonical_name(name)
    except InputError:
        return None
    t = _table(UserRow)
    return session.execute(sa.select(UserRow).where(t.c.name_key == key)
                           .execution_options(populate_existing=True)).scalar_one_or_none()


def list_users(session: Session) -> list[UserRow]:
    t = _table(UserRow)
    return list(session.execute(sa.select(UserRow).order_by(t.c.name)).scalars())


def revoke_user(session: Session, name: str, *, actor: str, actor_id: int | None = None,
                now: datetime | None = None) -> bool:
    """Revoke a user's token at once. False when no active user has that (canonical) name."""
    now = _now(now)
    user = get_user(session, name)
    if user is None:
        return False
    t = _table(UserRow)
    res = session.execute(sa.update(t).where(t.c.id == user.id, t.c.revoked_at.is_(None)).values(revoked_at=now))
    if rowcount(res) == 1:
        audit.append(session, actor=actor, kind="user.revoked", subject=user.name, now=now,
                     payload={"user_id": user.id, "by_id": actor_id})
        return True
    return False


def rotate_token(session: Session, name: str, *, actor: str, actor_id: int | None = None, token: str | None = None,
                 now: datetime | None = None) -> str:
    """Give an active user a new token (the old one stops working); returns the new plain token."""
    now = _now(now)
    plain = _new_token(token)
    user = get_user(session, name)
    t = _table(UserRow)
    res = None if user is None else session.execute(
        sa.update(t).where(t.c.id == user.id, t.c.revoked_at.is_(None)).values(token_hash=hash_token(plain))
    )
    if user is None or res is None or rowcount(res) != 1:
        raise NotFound(f"no active user named {name}")
    audit.append(session, actor=actor, kind="user.token_rotated", subject=user.name, now=now,
                 payload={"user_id": user.id, "by_id": actor_id})
    return plain


# === leases ==========================================================================================


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
    now = _now(now)
    expires = now + timedelta(seconds=ttl_s)
    t = _table(LeaseRow)
    ins = upsert_insert(session, t).values(
        name=_require(name, "lease name"), owner=_require(owner, "owner"), fencing_token=1, expires_at=expires,
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
    now = _now(now)
    t = _table(LeaseRow)
    res = session.execute(
        sa.update(t).where(t.c.name == name, t.c.owner == owner, t.c.fencing_token == token, t.c.expires_at > now)
        .values(expires_at=now + timedelta(seconds=ttl_s), renewed_at=now)
    )
    return rowcount(res) == 1


def release_lease(session: Session, name: str, owner: str, token: int, *, now: datetime | None = None) -> bool:
    """Give the lease up now (others may take it at once). False when it was not held with ``token``."""
    now = _now(now)
    t = _table(LeaseRow)
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
    now = _now(now)
    t = _table(LeaseRow)
    stmt = sa.select(t.c.name).where(
        t.c.name == name, t.c.owner == owner, t.c.fencing_token == token, t.c.expires_at > now
    )
    if lock:
        stmt = stmt.with_for_update(read=True)
    return session.execute(stmt).first() is not None


def get_lease(session: Session, name: str) -> LeaseRow | None:
    return _get(session, LeaseRow, name)


# === scan cursors ====================================================================================


def get_cursor(session: Session, chain: str, kind: str) -> ScanCursorRow | None:
    return _get(session, ScanCursorRow, chain, kind)


def set_cursor(
    session: Session, chain: str, kind: str, last_block: int, block_hash: str, *,
    expected_block: int | None = None, now: datetime | None = None,
) -> ScanCursorRow:
    """Save how far a scanner got. With ``expected_block`` the update only happens if the cursor is
    still there (two scanners cannot both advance it); otherwise it is an upsert.

    Raises:
        StaleState: ``expected_block`` given and the cursor moved (or does not exist).
    """
    now = _now(now)
    if last_block < 0:
        raise InputError("last_block must be >= 0")
    t = _table(ScanCursorRow)
    if expected_block is not None:
        res = session.execute(
            sa.update(t).where(t.c.chain == chain, t.c.kind == kind, t.c.last_block == expected_block)
            .values(last_block=last_block, block_hash=block_hash, updated_at=now)
        )
        if rowcount(res) != 1:
            raise StaleState(f"scan cursor {chain}/{kind} is not at block {expected_block}")
    else:
        ins = upsert_insert(session, t).values(
            chain=chain, kind=kind, last_block=last_block, block_hash=block_hash, updated_at=now
        )
        session.execute(ins.on_conflict_do_update(
            index_elements=[t.c.chain, t.c.kind],
            set_={"last_block": ins.excluded.last_block, "block_hash": ins.excluded.block_hash,
                  "updated_at": ins.excluded.updated_at},
        ))
    row = _get(session, ScanCursorRow, chain, kind)
    assert row is not None
    return row

