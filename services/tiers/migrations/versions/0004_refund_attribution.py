"""A refund's purchase instant: under the calendar-year basis, the year its spend is taken
from.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Refunds recorded before this revision stay dated by their own instant: their purchase
    # is not known to them.
    op.add_column("qualifying_activity", sa.Column("attributed_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("qualifying_activity", "attributed_at")
