"""Identity by user id, and approvals bound to a digest of the request.

Revision ID: 0002_identity
Revises: 0001_initial
Create Date: 2026-11-24

- ``users.name_key``: the canonical name (NFKC, casefolded, stripped), unique, so ``Tom`` and ``TOM``
  cannot both exist. Existing rows are filled in here; two existing names that collide stop the
  upgrade with a clear message (rename one first).
- user ids beside the names kept for display: ``withdrawals.requested_by_id``,
  ``withdrawal_approvals.approver_id`` (unique per withdrawal), ``policy_versions.proposed_by_id`` /
  ``approved_by_id``, ``actions.proposed_by_id`` / ``approved_by_id``. Rows written before this
  revision keep NULL ids.
- ``withdrawals.approval_digest`` and ``withdrawal_approvals.digest``: what was requested and approved.
"""

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from primeguard.domain.errors import StoreError

revision: str = "0002_identity"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key(name: str) -> str:
    # Spelled out (not imported) so this revision never changes when the code does.
    return unicodedata.normalize("NFKC", name).casefold().strip()


def upgrade() -> None:
    """Add the identity and digest columns; fill and enforce ``users.name_key``."""
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("name_key", sa.String(), nullable=True))
    conn = op.get_bind()
    users = sa.table("users", sa.column("id", sa.BigInteger()), sa.column("name", sa.String()),
                     sa.column("name_key", sa.String()))
    seen: dict[str, str] = {}
    for uid, name in conn.execute(sa.select(users.c.id, users.c.name)).all():
        key = _key(str(name))
        if key in seen:
            raise StoreError(f"migration 0002_identity: users {seen[key]!r} and {name!r} are the same name "
                             "after NFKC casefolding; rename one before upgrading")
        seen[key] = str(name)
        conn.execute(sa.update(users).where(users.c.id == uid).values(name_key=key))
    with op.batch_alter_table("users") as batch:
        batch.alter_column("name_key", existing_type=sa.String(), nullable=False)
        batch.create_unique_constraint(op.f("uq_users_name_key"), ["name_key"])

    with op.batch_alter_table("withdrawals") as batch:
        batch.add_column(sa.Column("requested_by_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("approval_digest", sa.String(), nullable=True))
    with op.batch_alter_table("withdrawal_approvals") as batch:
        batch.add_column(sa.Column("approver_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("digest", sa.String(), nullable=True))
        batch.create_unique_constraint(op.f("uq_withdrawal_approvals_withdrawal_id_approver_id"),
                                       ["withdrawal_id", "approver_id"])
    with op.batch_alter_table("policy_versions") as batch:
        batch.add_column(sa.Column("proposed_by_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("approved_by_id", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("actions") as batch:
        batch.add_column(sa.Column("approved_by_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("proposed_by_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Drop what :func:`upgrade` added."""
    with op.batch_alter_table("actions") as batch:
        batch.drop_column("proposed_by_id")
        batch.drop_column("approved_by_id")
    with op.batch_alter_table("policy_versions") as batch:
        batch.drop_column("approved_by_id")
        batch.drop_column("proposed_by_id")
    with op.batch_alter_table("withdrawal_approvals") as batch:
        batch.drop_constraint(op.f("uq_withdrawal_approvals_withdrawal_id_approver_id"), type_="unique")
        batch.drop_column("digest")
        batch.drop_column("approver_id")
    with op.batch_alter_table("withdrawals") as batch:
        batch.drop_column("approval_digest")
        batch.drop_column("requested_by_id")
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("uq_users_name_key"), type_="unique")
        batch.drop_column("name_key")
