"""Daily closing prices for volatility haircuts.

Revision ID: 0005_price_closes
Revises: 0004_ladder
Create Date: 2026-12-03

- ``price_closes``: per asset and UTC day, the last reference price a sweep used (one row per asset
  and day, updated in place), the history ``risk.volatility`` computes σ from.

Types are spelled out (TIME = UTCDateTime, EXACT = ExactDecimal) so this file never changes when
the models do.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_price_closes"
down_revision: str | Sequence[str] | None = "0004_ladder"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)
EXACT = sa.Numeric().with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    """Create ``price_closes``."""
    op.create_table(
        "price_closes",
        sa.Column("asset", sa.String(), nullable=False),
        sa.Column("day", sa.String(), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("price", EXACT, nullable=False),
        sa.PrimaryKeyConstraint("asset", "day", name=op.f("pk_price_closes")),
    )


def downgrade() -> None:
    """Drop what :func:`upgrade` created."""
    op.drop_table("price_closes")
