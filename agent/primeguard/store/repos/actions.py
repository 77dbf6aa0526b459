"""Playbook actions: proposed once by deterministic id, then approved / executed / rejected (four eyes).

Contract (session first, nothing commits, audit entry in the same transaction, ``now`` passed in):
see :mod:`primeguard.store.repos`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from primeguard.domain.errors import InputError, SelfApprovalError
from primeguard.store import audit
from primeguard.store._sql import insert_ignore, rowcount, table_of
from primeguard.store.codec import store_json
from primeguard.store.errors import IllegalTransition, NotFound, StaleState
from primeguard.store.repos._helpers import acting_user, enum_value, get_row, required, resolve_now
from primeguard.store.tables import ActionMode, ActionRow, ActionState

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
    now = resolve_now(now)
    state = enum_value(ActionState, action.state or ActionState.PROPOSED, "action state")
    if state != ActionState.PROPOSED:
        raise InputError(f"actions are inserted as proposed, not {state}")
    params, _ = store_json(dict(action.params or {}))
    values = {
        "id": required(action.id, "action id"), "client_id": required(action.client_id, "client_id"),
        "kind": required(action.kind, "kind"), "mode": enum_value(ActionMode, action.mode, "action mode"),
        "state": state, "params": params, "result": None, "error": None, "approved_by": None,
        "approved_by_id": None, "proposed_by_id": proposed_by_id, "created_at": now, "updated_at": now, "version": 1,
    }
    inserted = insert_ignore(session, table_of(ActionRow), values)
    if inserted:
        audit.append(session, actor=actor, kind="action.proposed", subject=action.id, now=now, payload={
            "client_id": values["client_id"], "kind": values["kind"], "mode": values["mode"], "params": params,
            "proposed_by_id": proposed_by_id,
        })
    return inserted


def get_action(session: Session, action_id: str) -> ActionRow | None:
    return get_row(session, ActionRow, action_id)


def list_actions(session: Session, *, client_id: str | None = None, state: str | None = None,
                 limit: int = 100) -> list[ActionRow]:
    t = table_of(ActionRow)
    stmt = sa.select(ActionRow)
    if client_id is not None:
        stmt = stmt.where(t.c.client_id == client_id)
    if state is not None:
        stmt = stmt.where(t.c.state == enum_value(ActionState, state, "action state"))
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

    Mode rules: a ``dry_run`` or ``shadow`` action never reaches ``approved``/``executing`` (a shadow
    action goes from ``proposed`` to ``done`` with what it would have done); a ``needs_approval``
    action must be ``approved`` before ``executing``. ``approved`` needs ``actor_id`` (an active
    user, never the action's proposer) and records its name and id as the approver.

    Raises:
        NotFound, IllegalTransition, StaleState, ApprovalError (SelfApprovalError).
    """
    now = resolve_now(now)
    to = enum_value(ActionState, to, "action state")
    expected = enum_value(ActionState, expected, "expected action state")
    row = get_row(session, ActionRow, action_id)
    if row is None:
        raise NotFound(f"action {action_id} not found")
    if row.state != expected:
        raise StaleState(f"action {action_id} is {row.state}, expected {expected}")
    if to not in ACTION_TRANSITIONS[row.state]:
        raise IllegalTransition(f"action {action_id}: {row.state} → {to} is not allowed")
    if row.mode == ActionMode.DRY_RUN and to in (ActionState.APPROVED, ActionState.EXECUTING):
        raise IllegalTransition(f"action {action_id} is a dry run: it is never approved or executed")
    if row.mode == ActionMode.SHADOW and to in (ActionState.APPROVED, ActionState.EXECUTING):
        raise IllegalTransition(f"action {action_id} runs in shadow: it is only recorded, never executed")
    if row.mode == ActionMode.NEEDS_APPROVAL and row.state == ActionState.PROPOSED and to == ActionState.EXECUTING:
        raise IllegalTransition(f"action {action_id} needs approval before it executes")
    values: dict[str, Any] = {"state": to, "updated_at": now, "version": row.version + 1}
    if to == ActionState.APPROVED:
        user = acting_user(session, actor_id, f"approving action {action_id}")
        if row.proposed_by_id is not None and row.proposed_by_id == user.id:
            raise SelfApprovalError(f"{user.name} proposed action {action_id} and cannot approve it")
        actor = user.name
        values["approved_by"] = user.name
        values["approved_by_id"] = user.id
    if result is not None:
        values["result"] = store_json(dict(result))[0]
    if error is not None:
        values["error"] = error
    t = table_of(ActionRow)
    res = session.execute(
        sa.update(t).where(t.c.id == action_id, t.c.state == expected, t.c.version == row.version).values(**values)
    )
    if rowcount(res) != 1:
        raise StaleState(f"action {action_id} changed concurrently")
    audit.append(session, actor=actor, kind=f"action.{to}", subject=action_id, now=now, payload={
        "from": expected, "to": to, "result": values.get("result"), "error": error,
        **({"approver_id": values["approved_by_id"]} if to == ActionState.APPROVED else {}),
    })
    fresh = get_row(session, ActionRow, action_id)
    assert fresh is not None
    return fresh
