"""Win-back: each customer's last purchase time and the lapse their last win-back was for.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "purchase_activity",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("last_purchase_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("win_back_for", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "ix_purchase_activity_last_purchase_at", "purchase_activity", ["last_purchase_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_purchase_activity_last_purchase_at", "purchase_activity")
    op.drop_table("purchase_activity")
