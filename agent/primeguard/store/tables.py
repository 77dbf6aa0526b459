"""SQLModel tables. The Alembic migrations in ``store/migrations`` are the source of truth for the
schema; ``tests/store/test_migrations.py`` checks that these models and the migrations agree.

Conventions: times are aware UTC (:class:`UTCDateTime`); money and ratios are exact
(:class:`ExactDecimal`, or Decimal strings inside JSON); JSON columns hold :func:`codec.jsonable`
values with sensitive keys masked; no column ever holds a secret (web tokens are stored as sha256).
State columns carry CHECK constraints listing their allowed values.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from primeguard.store.coltypes import BigIntPK, ExactDecimal, JSONDoc, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

store_registry = registry(metadata=sa.MetaData(naming_convention=NAMING_CONVENTION))


class StoreModel(SQLModel, registry=store_registry):
    """Base of every primeguard table (own metadata: nothing else leaks into migrations)."""


metadata = store_registry.metadata


def _in(column: str, values: type[StrEnum], name: str | None = None) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{v.value}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=name or column)


def _json(nullable: bool = False) -> Any:
    return Field(sa_column=sa.Column(JSONDoc, nullable=nullable))


def _time(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None if nullable else ..., sa_type=UTCDateTime, nullable=nullable, index=index)


# --- states --------------------------------------------------------------------------------------


class FindingState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class AlertState(StrEnum):
    PENDING = "pending"  # should be sent (new, escalated, or re-armed after cooldown)
    SENT = "sent"
    FAILED = "failed"  # last attempt failed; will be retried
    SUPPRESSED = "suppressed"  # deliberately not sent (cooldown, hysteresis, muted)
    RESOLVED = "resolved"  # the finding closed


class ActionMode(StrEnum):
    DRY_RUN = "dry_run"
    NEEDS_APPROVAL = "needs_approval"
    AUTOMATIC = "automatic"
    SHADOW = "shadow"  # recorded with what it would have done; never executed


class ActionState(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    EXECUTING = "executing"
    DONE = "done"
    FAILED = "failed"
    REJECTED = "rejected"


class PolicyState(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    ACTIVE = "active"
    RETIRED = "retired"
    REJECTED = "rejected"


class WithdrawalState(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    DENIED = "denied"
    SIGNED = "signed"
    BROADCAST = "broadcast"
    CONFIRMED = "confirmed"
    FAILED = "failed"


class Role(StrEnum):
    VIEWER = "viewer"
    TREASURY = "treasury"
    COMPLIANCE = "compliance"
    ADMIN = "admin"


# --- observations and history --------------------------------------------------------------------


class SnapshotRow(StoreModel, table=True):
    """One account's observation in one sweep. ``payload``: balances/positions, Decimals as strings."""

    __tablename__ = "snapshots"
    __table_args__ = (sa.UniqueConstraint("sweep_id", "account_id"),)

    id: int | None = Field(default=None, sa_type=BigIntPK, primary_key=True)
    sweep_id: str = Field(index=True)
    account_id: str = Field(index=True)
    venue: str
    ok: bool
    observed_at: datetime = _time(index=True)
    payload: dict[str, Any] = _json()
    error: str | None = None


class MetricRow(StoreModel, table=True):
    """Per-client risk metrics over time. ``extra``: other metrics (delta, leverage...) as Decimal strings."""

    __tablename__ = "metric_history"
    __table_args__ = (sa.Index("ix_metric_history_client_id_at", "client_id", "at"),)

    id: int | None = Field(default=None, sa_type=BigIntPK, primary_key=True)
    client_id: str
    at: datetime = _time()
    sweep_id: str | None = None
    ltv: Decimal | None = Field(default=None, sa_type=ExactDecimal, nullable=True)
    equity: Decimal = Field(sa_type=ExactDecimal, nullable=False)
    loan: Decimal = Field(sa_type=ExactDecimal, nullable=False)
    ladder_state: str
    extra: dict[str, Any] = _json()


class PriceCloseRow(StoreModel, table=True):
    """The last reference price seen per asset and UTC day (one row per asset and day, kept current
    by every sweep): the price history volatility haircuts are computed from."""

    __tablename__ = "price_closes"

    asset: str = Field(primary_key=True)
    day: str = Field(primary_key=True)  # ISO date (UTC) of ``at``
    at: datetime = _time()
    price: Decimal = Field(sa_type=ExactDecimal, nullable=False)


class FindingRow(StoreModel, table=True):
    """A finding's lifecycle, keyed by :attr:`Finding.key`. Reopening starts a new episode."""

    __tablename__ = "findings"
    __table_args__ = (_in("state", FindingState),)

    key: str = Field(primary_key=True)
    code: str = Field(index=True)
    severity: int
    subject: str = Field(index=True)
    venue: str = ""
    chain: str | None = None
    client_id: str | None = Field(default=None, index=True)
    rule_id: str | None = None
    message: str = Field(sa_type=sa.Text)
    details: dict[str, Any] = _json()
    state: str = Field(index=True)
    first_seen: datetime = _time()
    last_seen: datetime = _time()
    closed_at: datetime | None = _time(nullable=True)
    occurrences: int = 1


class AlertRow(StoreModel, table=True):
    """Delivery state of one finding on one channel."""

    __tablename__ = "alerts"
    __table_args__ = (sa.UniqueConstraint("finding_key", "channel"), _in("state", AlertState))

    id: int | None = Field(default=None, sa_type=BigIntPK, primary_key=True)
    finding_key: str = Field(index=True)
    channel: str
    level: str
    state: str = Field(index=True)
    attempts: int = 0
    sent_at: datetime | None = _time(nullable=True)
    cooldown_until: datetime | None = _time(nullable=True)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = _time()
    updated_at: datetime = _time()


# --- playbooks, decisions, policies --------------------------------------------------------------


class ActionRow(StoreModel, table=True):
    """A playbook action. ``id`` is deterministic, so the same action can never be inserted twice."""

    __tablename__ = "actions"
    __table_args__ = (_in("mode", ActionMode), _in("state", ActionState))

    id: str = Field(primary_key=True)
    client_id: str = Field(index=True)
    kind: str
    mode: str
    state: str = Field(default=ActionState.PROPOSED.value, index=True)
    params: dict[str, Any] = _json()
    result: dict[str, Any] | None = _json(nullable=True)
    error: str | None = Field(default=None, sa_type=sa.Text)
    approved_by: str | None = None
    approved_by_id: int | None = Field(default=None, sa_type=sa.BigInteger, nullable=True)
    proposed_by_id: int | None = Field(default=None, sa_type=sa.BigInteger, nullable=True)  # None: the daemon
    created_at: datetime = _time()
    updated_at: datetime = _time()
    version: int = 1


class DecisionRow(StoreModel, table=True):
    """A decision log entry (OPA-style): input with sensitive fields masked and listed."""

    __tablename__ = "decisions"

    id: str = Field(primary_key=True)
    kind: str = Field(index=True)
    subject: str = Field(index=True)
    outcome: str
    reasons: list[str] = _json()
    rule_ids: list[str] = _json()
    shadow: list[str] = _json()
    approvals_required: int = 0
    explanation: str = Field(sa_type=sa.Text)
    policy_hash: str = Field(index=True)
    input: dict[str, Any] = _json()
    masked_fields: list[str] = _json()
    actor: str
    decided_at: datetime = _time(index=True)
    audit_seq: int = Field(sa_type=sa.BigInteger)


class PolicyVersionRow(StoreModel, table=True):
    """A policy version, by content hash. At most one row is ``active`` (partial unique index)."""

    __tablename__ = "policy_versions"
    __table_args__ = (
        _in("state", PolicyState),
        sa.Index(
            "uq_policy_versions_one_active", "state", unique=True,
            sqlite_where=sa.text("state = 'active'"), postgresql_where=sa.text("state = 'active'"),
        ),
    )

    hash: str = Field(primary_key=True)
    content: str = Field(sa_type=sa.Text)
    format: str = "yaml"
    state: str
    note: str | None = Field(default=None, sa_type=sa.Text)
    proposed_by: str
    proposed_by_id: int | None = Field(default=None, sa_type=sa.BigInteger, nullable=True)
    proposed_at: datetime = _time()
    approved_by: str | None = None
    approved_by_id: int | None = Field(default=None, sa_type=sa.BigInteger, nullable=True)
    approved_at: datetime | None = _time(nullable=True)
    activated_at: datetime | None = _time(nullable=True)
    retired_at: datetime | None = _time(nullable=True)


# --- custody -------------------------------------------------------------------------------------


class WithdrawalRow(StoreModel, table=True):
    """A withdrawal request's lifecycle. ``amount`` is an exact Decimal string. Only the *hash* of a
    signed transaction is kept; never the raw transaction nor any key material."""

    __tablename__ = "withdrawals"
    __table_args__ = (
        _in("state", WithdrawalState),
        sa.UniqueConstraint("account_id", "chain", "nonce"),  # one nonce, one withdrawal
    )

    id: str = Field(primary_key=True)
    client_id: str = Field(index=True)
    account_id: str
    venue: str
    chain: str | None = None
    asset: str
    amount: str
    destination: str
    memo: str | None = None
    state: str = Field(index=True)
    requested_by: str
    requested_by_id: int | None = Field(default=None, sa_type=sa.BigInteger, nullable=True)
    approval_digest: str | None = None  # sha256 of what is approved (custody.withdrawals.approval_digest)
    requested_at: datetime = _time(index=True)
    updated_at: datetime = _time()
    decision_ids: list[str] = _json()
    tx_hash: str | None = None
    nonce: int | None = Field(default=None, sa_type=sa.BigInteger)
    signed_tx_hash: str | None = None
    external_id: str | None = None
    error: str | None = Field(default=None, sa_type=sa.Text)
    version: int = 1


class WithdrawalApprovalRow(StoreModel, table=True):
    """One approval: by a user id (one per user), of the request digest it saw."""

    __tablename__ = "withdrawal_approvals"
    __table_args__ = (sa.UniqueConstraint("withdrawal_id", "approver"),
                      sa.UniqueConstraint("withdrawal_id", "approver_id"))

    id: int | None = Field(default=None, sa_type=BigIntPK, primary_key=True)
    withdrawal_id: str = Field(foreign_key="withdrawals.id", index=True)
    approver: str
    approver_id: int | None = Field(default=None, sa_type=sa.BigInteger, nullable=True)
    role: str
    digest: str | None = None
    approved_at: datetime = _time()


class UserRow(StoreModel, table=True):
    """A dashboard/API user. Only ``token_hash`` (sha256 hex of the token) is stored."""

    __tablename__ = "users"
    __table_args__ = (_in("role", Role),)

    id: int | None = Field(default=None, sa_type=BigIntPK, primary_key=True)
    name: str = Field(unique=True)
    name_key: str = Field(unique=True)  # domain.identity.canonical_name(name): names unique after NFKC casefold
    role: str
    token_hash: str = Field(unique=True)
    created_at: datetime = _time()
    revoked_at: datetime | None = _time(nullable=True)


# --- destinations and screening ------------------------------------------------------------------


class VaultDestinationState(StrEnum):
    PENDING = "pending"  # proposed on the vault, inside its timelock
    ACTIVE = "active"  # the vault lets withdrawals go there
    REMOVED = "removed"  # removed from the vault (and revoked for the agent)
    FAILED = "failed"  # the on-chain proposal did not go through


class VaultDestinationRow(StoreModel, table=True):
    """One destination on one vault for one asset, as the agent put it there and followed it.
    ``id`` is ``<vault id>:<asset address>:<destination>``."""

    __tablename__ = "vault_destinations"
    __table_args__ = (_in("state", VaultDestinationState),)

    id: str = Field(primary_key=True)
    vault_id: str = Field(index=True)
    client_id: str
    chain: str
    asset: str  # token address, or the zero address for native
    address: str = Field(index=True)
    entry_id: str | None = None
    state: str
    activates_at: datetime | None = _time(nullable=True)
    tx_hash: str | None = None
    error: str | None = Field(default=None, sa_type=sa.Text)
    updated_at: datetime = _time()


class ScreeningListRow(StoreModel, table=True):
    """One imported sanctions list (an OFAC SDN advanced XML, or a CSV): where from, when, how many."""

    __tablename__ = "screening_lists"

    id: int | None = Field(default=None, sa_type=BigIntPK, primary_key=True)
    source: str = Field(index=True)
    fmt: str
    source_date: str | None = None
    sha256: str
    count: int
    imported_by: str
    imported_at: datetime = _time()


class ScreeningAddressRow(StoreModel, table=True):
    """An address on an imported list (lower-case hex for EVM addresses, as written otherwise)."""

    __tablename__ = "screening_addresses"

    id: int | None = Field(default=None, sa_type=BigIntPK, primary_key=True)
    list_id: int = Field(sa_type=sa.BigInteger, foreign_key="screening_lists.id", index=True)
    address: str = Field(index=True)
    label: str | None = None


class LadderRung(StrEnum):
    NORMAL = "normal"
    WARN = "warn"
    MARGIN_CALL = "margin_call"
    HALT = "halt"
    LIQUIDATE = "liquidate"


class LadderStateRow(StoreModel, table=True):
    """Where a client stands on the ladder, with its clocks, so a restart resumes them exactly:
    ``entered_at`` (the rung's episode), ``deadline`` (margin-call cure deadline) and ``below``
    (per rung at or below the current one, since when the LTV has been under its lower band: ISO
    times or null; the cooldown clocks). ``ack_*``: the last client acknowledgement of this episode's
    margin call (recorded by a store user; it never stops the clock)."""

    __tablename__ = "ladder_states"
    __table_args__ = (_in("state", LadderRung),)

    client_id: str = Field(primary_key=True)
    state: str
    entered_at: datetime = _time()
    deadline: datetime | None = _time(nullable=True)
    below: list[Any] = _json()
    ack_at: datetime | None = _time(nullable=True)
    ack_by: str | None = None
    ack_note: str | None = Field(default=None, sa_type=sa.Text)
    updated_at: datetime = _time()


# --- replicas and scanners -----------------------------------------------------------------------


class LeaseRow(StoreModel, table=True):
    """A named lease with TTL. ``fencing_token`` increases every time the holder changes."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True)
    owner: str
    fencing_token: int = Field(sa_type=sa.BigInteger)
    expires_at: datetime = _time()
    acquired_at: datetime = _time()
    renewed_at: datetime = _time()


class ScanCursorRow(StoreModel, table=True):
    """How far a chain scanner got; ``block_hash`` lets it detect a reorg on restart."""

    __tablename__ = "scan_cursors"

    chain: str = Field(primary_key=True)
    kind: str = Field(primary_key=True)
    last_block: int = Field(sa_type=sa.BigInteger)
    block_hash: str
    updated_at: datetime = _time()


# --- audit ---------------------------------------------------------------------------------------


class AuditRow(StoreModel, table=True):
    """One hash-chained audit entry (see :mod:`primeguard.store.audit`)."""

    __tablename__ = "audit_log"

    seq: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True, autoincrement=False))
    at: datetime = _time()
    actor: str
    kind: str = Field(index=True)
    subject: str = Field(index=True)
    payload: dict[str, Any] = _json()
    prev_hash: str
    hash: str = Field(unique=True)


class AuditHeadRow(StoreModel, table=True):
    """The chain head (single row, id 1): appenders lock it, so the chain never forks; ``verify``
    compares it with the last entry, so removing entries from the end is detected."""

    __tablename__ = "audit_head"

    id: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    seq: int = Field(sa_type=sa.BigInteger)
    hash: str


ALL_TABLES: tuple[type[StoreModel], ...] = (
    SnapshotRow, MetricRow, FindingRow, AlertRow, ActionRow, DecisionRow, PolicyVersionRow,
    WithdrawalRow, WithdrawalApprovalRow, UserRow, LadderStateRow, LeaseRow, ScanCursorRow, AuditRow, AuditHeadRow,
)
