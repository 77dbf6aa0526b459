"""Destinations on vaults, and imported sanctions lists.

Revision ID: 0003_destinations
Revises: 0002_identity
Create Date: 2026-11-25

- ``vault_destinations``: each (vault, asset, destination) the agent proposed on chain and followed
  through the vault's timelock (pending → active → removed, or failed).
- ``screening_lists`` / ``screening_addresses``: imported lists (OFAC SDN advanced XML, CSV) with
  their source, date, digest and count, and their addresses.

Types are spelled out (TIME = UTCDateTime, BIGINT_PK = BigIntPK) so this file never changes when
the models do.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_destinations"
down_revision: str | Sequence[str] | None = "0002_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)
BIGINT_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the three tables."""
    op.create_table(
        "vault_destinations",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("vault_id", sa.String(), nullable=False),
        sa.Column("client_id", sa.String(), nullable=False),
        sa.Column("chain", sa.String(), nullable=False),
        sa.Column("asset", sa.String(), nullable=False),
        sa.Column("address", sa.String(), nullable=False),
        sa.Column("entry_id", sa.String(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("activates_at", TIME, nullable=True),
        sa.Column("tx_hash", sa.String(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", TIME, nullable=False),
        sa.CheckConstraint("state IN ('pending', 'active', 'removed', 'failed')",
                           name=op.f("ck_vault_destinations_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vault_destinations")),
    )
    op.create_index(op.f("ix_vault_destinations_vault_id"), "vault_destinations", ["vault_id"], unique=False)
    op.create_index(op.f("ix_vault_destinations_address"), "vault_destinations", ["address"], unique=False)
    op.create_table(
        "screening_lists",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("fmt", sa.String(), nullable=False),
        sa.Column("source_date", sa.String(), nullable=True),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("imported_by", sa.String(), nullable=False),
        sa.Column("imported_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screening_lists")),
    )
    op.create_index(op.f("ix_screening_lists_source"), "screening_lists", ["source"], unique=False)
    op.create_table(
        "screening_addresses",
        sa.Column("id", BIGINT_PK, nullable=False),
        sa.Column("list_id", sa.BigInteger(), nullable=False),
        sa.Column("address", sa.String(), nullable=False),
        sa.Column("label", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["list_id"], ["screening_lists.id"],
                                name=op.f("fk_screening_addresses_list_id_screening_lists")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screening_addresses")),
    )
    op.create_index(op.f("ix_screening_addresses_list_id"), "screening_addresses", ["list_id"], unique=False)
    op.create_index(op.f("ix_screening_addresses_address"), "screening_addresses", ["address"], unique=False)


def downgrade() -> None:
    """Drop what :func:`upgrade` created."""
    op.drop_index(op.f("ix_screening_addresses_address"), table_name="screening_addresses")
    op.drop_index(op.f("ix_screening_addresses_list_id"), table_name="screening_addresses")
    op.drop_table("screening_addresses")
    op.drop_index(op.f("ix_screening_lists_source"), table_name="screening_lists")
    op.drop_table("screening_lists")
    op.drop_index(op.f("ix_vault_destinations_address"), table_name="vault_destinations")
    op.drop_index(op.f("ix_vault_destinations_vault_id"), table_name="vault_destinations")
    op.drop_table("vault_destinations")
