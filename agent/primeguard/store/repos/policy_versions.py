"""Policy versions in the database: propose, approve (four eyes by user id), reject, activate.

Contract (session first, nothing commits, audit entry in the same transaction, ``now`` passed in):
see :mod:`primeguard.store.repos`.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session

from primeguard.domain.errors import SelfApprovalError
from primeguard.domain.identity import canonical_name
from primeguard.store import audit
from primeguard.store._sql import insert_ignore, table_of
from primeguard.store.codec import sha256_hex
from primeguard.store.errors import IllegalTransition, NotFound
from primeguard.store.repos._helpers import acting_user, get_row, required, resolve_now
from primeguard.store.tables import PolicyState, PolicyVersionRow


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
    now = resolve_now(now)
    if proposed_by_id is not None:
        proposed_by = acting_user(session, proposed_by_id, "proposing a policy version").name
    digest = policy_hash or policy_content_hash(content)
    created = insert_ignore(session, table_of(PolicyVersionRow), {
        "hash": digest, "content": content, "format": fmt, "state": PolicyState.PROPOSED.value, "note": note,
        "proposed_by": required(proposed_by, "proposed_by"), "proposed_by_id": proposed_by_id, "proposed_at": now,
    })
    if created:
        audit.append(session, actor=proposed_by, kind="policy.proposed", subject=digest, now=now,
                     payload={"hash": digest, "format": fmt, "note": note, "size": len(content),
                              "proposed_by_id": proposed_by_id})
    row = get_row(session, PolicyVersionRow, digest)
    assert row is not None
    return row, created


def get_policy_version(session: Session, policy_hash: str) -> PolicyVersionRow | None:
    return get_row(session, PolicyVersionRow, policy_hash)


def get_active_policy(session: Session) -> PolicyVersionRow | None:
    t = table_of(PolicyVersionRow)
    return session.execute(
        sa.select(PolicyVersionRow).where(t.c.state == PolicyState.ACTIVE.value)
    ).scalar_one_or_none()


def get_active_policy_hash(session: Session) -> str | None:
    """The active version's hash only (no content): cheap enough to ask on every sweep."""
    t = table_of(PolicyVersionRow)
    return session.execute(sa.select(t.c.hash).where(t.c.state == PolicyState.ACTIVE.value)).scalar_one_or_none()


def list_policy_versions(session: Session, *, limit: int = 100) -> list[PolicyVersionRow]:
    t = table_of(PolicyVersionRow)
    return list(session.execute(sa.select(PolicyVersionRow).order_by(t.c.proposed_at.desc()).limit(limit)).scalars())


def approve_policy_version(session: Session, policy_hash: str, *, approver_id: int,
                           now: datetime | None = None) -> PolicyVersionRow:
    """``proposed`` → ``approved`` by the active user ``approver_id``. Four eyes by user id: the
    proposer cannot approve (for versions proposed before ids were recorded: by canonical name).

    Raises:
        NotFound, IllegalTransition, ApprovalError (SelfApprovalError).
    """
    now = resolve_now(now)
    row = get_row(session, PolicyVersionRow, policy_hash, lock=True)
    if row is None:
        raise NotFound(f"policy version {policy_hash} not found")
    if row.state != PolicyState.PROPOSED:
        raise IllegalTransition(
            f"policy version {policy_hash[:12]} is {row.state}; only proposed versions can be approved"
        )
    user = acting_user(session, approver_id, f"approving policy version {policy_hash[:12]}")
    approver = user.name
    same = (row.proposed_by_id == user.id if row.proposed_by_id is not None
            else canonical_name(row.proposed_by) == user.name_key)
    if same:
        raise SelfApprovalError(f"{approver} proposed policy version {policy_hash[:12]} and cannot approve it")
    t = table_of(PolicyVersionRow)
    session.execute(sa.update(t).where(t.c.hash == policy_hash).values(
        state=PolicyState.APPROVED.value, approved_by=approver, approved_by_id=user.id, approved_at=now))
    audit.append(session, actor=approver, kind="policy.approved", subject=policy_hash, now=now,
                 payload={"hash": policy_hash, "proposed_by": row.proposed_by, "proposed_by_id": row.proposed_by_id,
                          "approver_id": user.id, "role": user.role})
    fresh = get_row(session, PolicyVersionRow, policy_hash)
    assert fresh is not None
    return fresh


def reject_policy_version(session: Session, policy_hash: str, *, actor: str, reason: str = "",
                          now: datetime | None = None) -> PolicyVersionRow:
    now = resolve_now(now)
    row = get_row(session, PolicyVersionRow, policy_hash, lock=True)
    if row is None:
        raise NotFound(f"policy version {policy_hash} not found")
    if row.state not in (PolicyState.PROPOSED, PolicyState.APPROVED):
        raise IllegalTransition(f"policy version {policy_hash[:12]} is {row.state}; it cannot be rejected")
    t = table_of(PolicyVersionRow)
    session.execute(sa.update(t).where(t.c.hash == policy_hash).values(state=PolicyState.REJECTED.value))
    audit.append(session, actor=actor, kind="policy.rejected", subject=policy_hash, now=now,
                 payload={"hash": policy_hash, "reason": reason})
    fresh = get_row(session, PolicyVersionRow, policy_hash)
    assert fresh is not None
    return fresh


def activate_policy_version(session: Session, policy_hash: str, *, actor: str,
                            now: datetime | None = None) -> PolicyVersionRow:
    """Make an approved (or previously active, now retired) version the single active one; the
    current active version is retired. Serialised through the audit head lock.

    Raises:
        NotFound, IllegalTransition (not approved).
    """
    now = resolve_now(now)
    audit.lock_head(session)  # one activation at a time (the append below takes the same lock)
    row = get_row(session, PolicyVersionRow, policy_hash, lock=True)
    if row is None:
        raise NotFound(f"policy version {policy_hash} not found")
    if row.state == PolicyState.ACTIVE:
        return row
    if row.state not in (PolicyState.APPROVED, PolicyState.RETIRED) or row.approved_by is None:
        raise IllegalTransition(f"policy version {policy_hash[:12]} is {row.state}; approve it before activating")
    t = table_of(PolicyVersionRow)
    previous = get_active_policy(session)
    if previous is not None:
        session.execute(sa.update(t).where(t.c.hash == previous.hash).values(
            state=PolicyState.RETIRED.value, retired_at=now))
    session.execute(sa.update(t).where(t.c.hash == policy_hash).values(
        state=PolicyState.ACTIVE.value, activated_at=now, retired_at=None))
    audit.append(session, actor=actor, kind="policy.activated", subject=policy_hash, now=now,
                 payload={"hash": policy_hash, "previous": previous.hash if previous else None})
    fresh = get_row(session, PolicyVersionRow, policy_hash)
    assert fresh is not None
    return fresh
