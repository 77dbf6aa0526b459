"""Withdrawals: requests, their lifecycle transitions and the four-eyes approvals bound to a digest.

Contract (session first, nothing commits, audit entry in the same transaction, ``now`` passed in):
see :mod:`primeguard.store.repos`.
"""

from __future__ import annotations

import hmac
import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from primeguard.domain.errors import ApprovalError, InputError, SelfApprovalError
from primeguard.domain.identity import canonical_name
from primeguard.domain.money import parse_quantity
from primeguard.store import audit
from primeguard.store._sql import insert_ignore, rowcount, table_of
from primeguard.store.codec import as_utc, exact_decimal
from primeguard.store.errors import IllegalTransition, NotFound, StaleState
from primeguard.store.repos._helpers import acting_user, enum_value, get_row, required, resolve_now
from primeguard.store.tables import Role, WithdrawalApprovalRow, WithdrawalRow, WithdrawalState

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
    now = resolve_now(now)
    requested_by = acting_user(session, requested_by_id, "requesting a withdrawal").name
    if not _HASH32.match(approval_digest or ""):
        raise InputError("approval_digest must be a sha256 hex digest")
    value = exact_decimal(amount, what="withdrawal amount")
    if value <= 0:
        raise InputError(f"withdrawal amount must be positive, got {str(value)[:40]}")
    value = parse_quantity(value, what="withdrawal amount")  # bounded exponent and size: renders safely
    row = WithdrawalRow(
        id=withdrawal_id or uuid.uuid4().hex, client_id=required(client_id, "client_id"),
        account_id=required(account_id, "account_id"), venue=required(venue, "venue"), chain=chain,
        asset=required(asset, "asset"), amount=format(value, "f"), destination=required(destination, "destination"),
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
    return get_row(session, WithdrawalRow, withdrawal_id)


def list_withdrawals(session: Session, *, client_id: str | None = None, state: str | None = None,
                     limit: int = 100) -> list[WithdrawalRow]:
    t = table_of(WithdrawalRow)
    stmt = sa.select(WithdrawalRow)
    if client_id is not None:
        stmt = stmt.where(t.c.client_id == client_id)
    if state is not None:
        stmt = stmt.where(t.c.state == enum_value(WithdrawalState, state, "withdrawal state"))
    return list(session.execute(stmt.order_by(t.c.requested_at.desc(), t.c.id).limit(limit)).scalars())


def withdrawn_total(
    session: Session, *, client_id: str, asset: str, since: datetime,
    states: Sequence[str] = ACTIVE_WITHDRAWAL_STATES, exclude_id: str | None = None,
) -> Decimal:
    """Exact sum of a client's withdrawals of ``asset`` requested since ``since`` (velocity limits).
    By default every request that is not denied or failed counts, pending ones included."""
    t = table_of(WithdrawalRow)
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
    now = resolve_now(now)
    to = enum_value(WithdrawalState, to, "withdrawal state")
    row = get_row(session, WithdrawalRow, withdrawal_id)
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
    t = table_of(WithdrawalRow)
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
    fresh = get_row(session, WithdrawalRow, withdrawal_id)
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
    now = resolve_now(now)
    user = acting_user(session, approver_id, f"approving withdrawal {withdrawal_id}")
    approver, role = user.name, enum_value(Role, user.role, "role")
    row = get_row(session, WithdrawalRow, withdrawal_id)
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
    t = table_of(WithdrawalApprovalRow)
    if not insert_ignore(session, t, {"withdrawal_id": withdrawal_id, "approver": approver, "approver_id": user.id,
                                      "role": role, "digest": digest, "approved_at": now}):
        raise ApprovalError(f"{approver} already approved withdrawal {withdrawal_id}")
    audit.append(session, actor=approver, kind="withdrawal.approval_added", subject=withdrawal_id, now=now,
                 payload={"approver": approver, "approver_id": user.id, "role": role, "digest": digest})
    stmt = sa.select(WithdrawalApprovalRow).where(t.c.withdrawal_id == withdrawal_id, t.c.approver_id == user.id)
    approval: WithdrawalApprovalRow = session.execute(stmt).scalar_one()
    return approval


def list_approvals(session: Session, withdrawal_id: str) -> list[WithdrawalApprovalRow]:
    t = table_of(WithdrawalApprovalRow)
    stmt = sa.select(WithdrawalApprovalRow).where(t.c.withdrawal_id == withdrawal_id).order_by(t.c.approved_at, t.c.id)
    return list(session.execute(stmt).scalars())
