"""Initial schema: every primeguard table, plus the audit chain head row.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-23

Types are spelled out here (not imported from primeguard.store.coltypes) so this file never changes
when the models do. Equivalents: TIME = UTCDateTime, EXACT = ExactDecimal, JSON_DOC = JSONDoc,
BIGINT_PK = BigIntPK.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_initial"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)
EXACT = sa.Numeric().with_variant(sa.Text(), "sqlite")
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
GENESIS_HASH = "0" * 64


def upgrade() -> None:
    """Create every table and seed the audit chain head."""
    op.create_table(
        "actions",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("client_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("mode", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("params", JSON_DOC, nullable=False),
        sa.Column("result", JSON_DOC, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("approved_by", sa.String(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("mode IN ('dry_run', 'needs_approval', 'automatic')", name=op.f("ck_actions_mode")),
        sa.CheckConstraint(
            "state IN ('proposed', 'approved', 'executing', 'done', 'failed', 'rejected')",
            name=op.f("ck_actions_state"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_actions")),
    )
    op.create_index(op.f("ix_actions_client_id"), "actions", ["client_id"], unique=False)
    op.create_index(op.f("ix_actions_state"), "actions", ["state"], unique=False)

    op.create_table(
        "alerts",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("finding_key", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("level", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", TIME, nullable=True),
        sa.Column("cooldown_until", TIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'sent', 'failed', 'suppressed', 'resolved')", name=op.f("ck_alerts_state")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("finding_key", "channel", name=op.f("uq_alerts_finding_key_channel")),
    )
    op.create_index(op.f("ix_alerts_finding_key"), "alerts", ["finding_key"], unique=False)
    op.create_index(op.f("ix_alerts_state"), "alerts", ["state"], unique=False)

    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("payload", JSON_DOC, nullable=False),
        sa.Column("prev_hash", sa.String(), nullable=False),
        sa.Column("hash", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_log_hash")),
    )
    op.create_index(op.f("ix_audit_log_kind"), "audit_log", ["kind"], unique=False)
    op.create_index(op.f("ix_audit_log_subject"), "audit_log", ["subject"], unique=False)

    op.create_table(
        "decisions",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("reasons", JSON_DOC, nullable=False),
        sa.Column("rule_ids", JSON_DOC, nullable=False),
        sa.Column("shadow", JSON_DOC, nullable=False),
        sa.Column("approvals_required", sa.Integer(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("policy_hash", sa.String(), nullable=False),
        sa.Column("input", JSON_DOC, nullable=False),
        sa.Column("masked_fields", JSON_DOC, nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("decided_at", TIME, nullable=False),
        sa.Column("audit_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
    )
    op.create_index(op.f("ix_decisions_decided_at"), "decisions", ["decided_at"], unique=False)
    op.create_index(op.f("ix_decisions_kind"), "decisions", ["kind"], unique=False)
    op.create_index(op.f("ix_decisions_policy_hash"), "decisions", ["policy_hash"], unique=False)
    op.create_index(op.f("ix_decisions_subject"), "decisions", ["subject"], unique=False)

    op.create_table(
        "findings",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("venue", sa.String(), nullable=False),
        sa.Column("chain", sa.String(), nullable=True),
        sa.Column("client_id", sa.String(), nullable=True),
        sa.Column("rule_id", sa.String(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", JSON_DOC, nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("first_seen", TIME, nullable=False),
        sa.Column("last_seen", TIME, nullable=False),
        sa.Column("closed_at", TIME, nullable=True),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.CheckConstraint("state IN ('open', 'closed')", name=op.f("ck_findings_state")),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_findings")),
    )
    op.create_index(op.f("ix_findings_client_id"), "findings", ["client_id"], unique=False)
    op.create_index(op.f("ix_findings_code"), "findings", ["code"], unique=False)
    op.create_index(op.f("ix_findings_state"), "findings", ["state"], unique=False)
    op.create_index(op.f("ix_findings_subject"), "findings", ["subject"], unique=False)

    op.create_table(
        "leases",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("fencing_token", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("acquired_at", TIME, nullable=False),
        sa.Column("renewed_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "metric_history",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("client_id", sa.String(), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("sweep_id", sa.String(), nullable=True),
        sa.Column("ltv", EXACT, nullable=True),
        sa.Column("equity", EXACT, nullable=False),
        sa.Column("loan", EXACT, nullable=False),
        sa.Column("ladder_state", sa.String(), nullable=False),
        sa.Column("extra", JSON_DOC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_history")),
    )
    op.create_index("ix_metric_history_client_id_at", "metric_history", ["client_id", "at"], unique=False)

    op.create_table(
        "policy_versions",
        sa.Column("hash", sa.String(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("format", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("proposed_by", sa.String(), nullable=False),
        sa.Column("proposed_at", TIME, nullable=False),
        sa.Column("approved_by", sa.String(), nullable=True),
        sa.Column("approved_at", TIME, nullable=True),
        sa.Column("activated_at", TIME, nullable=True),
        sa.Column("retired_at", TIME, nullable=True),
        sa.CheckConstraint(
            "state IN ('proposed', 'approved', 'active', 'retired', 'rejected')", name=op.f("ck_policy_versions_state")
        ),
        sa.PrimaryKeyConstraint("hash", name=op.f("pk_policy_versions")),
    )
    op.create_index(
        "uq_policy_versions_one_active",
        "policy_versions",
        ["state"],
        unique=True,
        sqlite_where=sa.text("state = 'active'"),
        postgresql_where=sa.text("state = 'active'"),
    )

    op.create_table(
        "scan_cursors",
        sa.Column("chain", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("last_block", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(), nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("chain", "kind", name=op.f("pk_scan_cursors")),
    )
    op.create_table(
        "snapshots",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("sweep_id", sa.String(), nullable=False),
        sa.Column("account_id", sa.String(), nullable=False),
        sa.Column("venue", sa.String(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("observed_at", TIME, nullable=False),
        sa.Column("payload", JSON_DOC, nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshots")),
        sa.UniqueConstraint("sweep_id", "account_id", name=op.f("uq_snapshots_sweep_id_account_id")),
    )
    op.create_index(op.f("ix_snapshots_account_id"), "snapshots", ["account_id"], unique=False)
    op.create_index(op.f("ix_snapshots_observed_at"), "snapshots", ["observed_at"], unique=False)
    op.create_index(op.f("ix_snapshots_sweep_id"), "snapshots", ["sweep_id"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("revoked_at", TIME, nullable=True),
        sa.CheckConstraint("role IN ('viewer', 'treasury', 'compliance', 'admin')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_users_token_hash")),
    )
    op.create_table(
        "withdrawals",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("client_id", sa.String(), nullable=False),
        sa.Column("account_id", sa.String(), nullable=False),
        sa.Column("venue", sa.String(), nullable=False),
        sa.Column("chain", sa.String(), nullable=True),
        sa.Column("asset", sa.String(), nullable=False),
        sa.Column("amount", sa.String(), nullable=False),
        sa.Column("destination", sa.String(), nullable=False),
        sa.Column("memo", sa.String(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("requested_by", sa.String(), nullable=False),
        sa.Column("requested_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("decision_ids", JSON_DOC, nullable=False),
        sa.Column("tx_hash", sa.String(), nullable=True),
        sa.Column("nonce", sa.BigInteger(), nullable=True),
        sa.Column("signed_tx_hash", sa.String(), nullable=True),
        sa.Column("external_id", sa.String(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "state IN ('requested', 'approved', 'denied', 'signed', 'broadcast', 'confirmed', 'failed')",
            name=op.f("ck_withdrawals_state"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_withdrawals")),
        sa.UniqueConstraint("account_id", "chain", "nonce", name=op.f("uq_withdrawals_account_id_chain_nonce")),
    )
    op.create_index(op.f("ix_withdrawals_client_id"), "withdrawals", ["client_id"], unique=False)
    op.create_index(op.f("ix_withdrawals_requested_at"), "withdrawals", ["requested_at"], unique=False)
    op.create_index(op.f("ix_withdrawals_state"), "withdrawals", ["state"], unique=False)

    op.create_table(
        "withdrawal_approvals",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("withdrawal_id", sa.String(), nullable=False),
        sa.Column("approver", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("approved_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["withdrawal_id"], ["withdrawals.id"], name=op.f("fk_withdrawal_approvals_withdrawal_id_withdrawals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_withdrawal_approvals")),
        sa.UniqueConstraint("withdrawal_id", "approver", name=op.f("uq_withdrawal_approvals_withdrawal_id_approver")),
    )
    op.create_index(
        op.f("ix_withdrawal_approvals_withdrawal_id"), "withdrawal_approvals", ["withdrawal_id"], unique=False
    )

    op.bulk_insert(
        sa.table(
            "audit_head", sa.column("id", sa.Integer), sa.column("seq", sa.BigInteger), sa.column("hash", sa.String)
        ),
        [{"id": 1, "seq": 0, "hash": GENESIS_HASH}],
    )


def downgrade() -> None:
    """Drop everything (loses all data: for development only)."""
    op.drop_index(op.f("ix_withdrawal_approvals_withdrawal_id"), table_name="withdrawal_approvals")

    op.drop_table("withdrawal_approvals")
    op.drop_index(op.f("ix_withdrawals_state"), table_name="withdrawals")
    op.drop_index(op.f("ix_withdrawals_requested_at"), table_name="withdrawals")
    op.drop_index(op.f("ix_withdrawals_client_id"), table_name="withdrawals")

    op.drop_table("withdrawals")
    op.drop_table("users")
    op.drop_index(op.f("ix_snapshots_sweep_id"), table_name="snapshots")
    op.drop_index(op.f("ix_snapshots_observed_at"), table_name="snapshots")
    op.drop_index(op.f("ix_snapshots_account_id"), table_name="snapshots")

    op.drop_table("snapshots")
    op.drop_table("scan_cursors")
    op.drop_index(
        "uq_policy_versions_one_active",
        table_name="policy_versions",
        sqlite_where=sa.text("state = 'active'"),
        postgresql_where=sa.text("state = 'active'"),
    )

    op.drop_table("policy_versions")
    op.drop_index("ix_metric_history_client_id_at", table_name="metric_history")

    op.drop_table("metric_history")
    op.drop_table("leases")
    op.drop_index(op.f("ix_findings_subject"), table_name="findings")
    op.drop_index(op.f("ix_findings_state"), table_name="findings")
    op.drop_index(op.f("ix_findings_code"), table_name="findings")
    op.drop_index(op.f("ix_findings_client_id"), table_name="findings")

    op.drop_table("findings")
    op.drop_index(op.f("ix_decisions_subject"), table_name="decisions")
    op.drop_index(op.f("ix_decisions_policy_hash"), table_name="decisions")
    op.drop_index(op.f("ix_decisions_kind"), table_name="decisions")
    op.drop_index(op.f("ix_decisions_decided_at"), table_name="decisions")

    op.drop_table("decisions")
    op.drop_index(op.f("ix_audit_log_subject"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_kind"), table_name="audit_log")

    op.drop_table("audit_log")
    op.drop_table("audit_head")
    op.drop_index(op.f("ix_alerts_state"), table_name="alerts")
    op.drop_index(op.f("ix_alerts_finding_key"), table_name="alerts")

    op.drop_table("alerts")
    op.drop_index(op.f("ix_actions_state"), table_name="actions")
    op.drop_index(op.f("ix_actions_client_id"), table_name="actions")

    op.drop_table("actions")
