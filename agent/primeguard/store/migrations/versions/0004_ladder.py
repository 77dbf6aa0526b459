"""Ladder clocks survive restarts; a shadow mode for playbook actions.

Revision ID: 0004_ladder
Revises: 0003_destinations
Create Date: 2026-12-03

- ``ladder_states``: per client its rung, when it entered it, the margin-call deadline and the
  cooldown clocks (``below``), plus the last client acknowledgement of the margin call.
- ``actions.mode`` also allows ``shadow`` (recorded with what it would have done, never executed).

Types are spelled out (TIME = UTCDateTime, JSON_DOC = JSONDoc) so this file never changes when the
models do.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_ladder"
down_revision: str | Sequence[str] | None = "0003_destinations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
MODES_BEFORE = "mode IN ('dry_run', 'needs_approval', 'automatic')"
MODES_AFTER = "mode IN ('dry_run', 'needs_approval', 'automatic', 'shadow')"


def upgrade() -> None:
    """Create ``ladder_states``; widen the action mode check."""
    op.create_table(
        "ladder_states",
        sa.Column("client_id", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("entered_at", TIME, nullable=False),
        sa.Column("deadline", TIME, nullable=True),
        sa.Column("below", JSON_DOC, nullable=False),
        sa.Column("ack_at", TIME, nullable=True),
        sa.Column("ack_by", sa.String(), nullable=True),
        sa.Column("ack_note", sa.Text(), nullable=True),
        sa.Column("updated_at", TIME, nullable=False),
        sa.CheckConstraint("state IN ('normal', 'warn', 'margin_call', 'halt', 'liquidate')",
                           name=op.f("ck_ladder_states_state")),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_ladder_states")),
    )
    with op.batch_alter_table("actions") as batch:
        batch.drop_constraint(op.f("ck_actions_mode"), type_="check")
        batch.create_check_constraint(op.f("ck_actions_mode"), MODES_AFTER)


def downgrade() -> None:
    """Drop what :func:`upgrade` created (shadow actions must be gone first)."""
    with op.batch_alter_table("actions") as batch:
        batch.drop_constraint(op.f("ck_actions_mode"), type_="check")
        batch.create_check_constraint(op.f("ck_actions_mode"), MODES_BEFORE)
    op.drop_table("ladder_states")
