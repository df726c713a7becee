"""Initial tiers schema: customers' tiers, qualifying activity, tier history, inbox, outbox.

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.storage.migrations import create_inbox_v1, create_outbox_v1

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_inbox_v1()
    create_outbox_v1()
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("tier", sa.Text, nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("review_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "qualifying_activity",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("activity_id", sa.Text, nullable=False, unique=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("amount", sa.Numeric(14, 2), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_qualifying_activity_customer_id", "qualifying_activity", ["customer_id"])
    op.create_table(
        "tier_history",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("from_tier", sa.Text, nullable=False),
        sa.Column("to_tier", sa.Text, nullable=False),
        sa.Column("direction", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_tier_history_customer_id", "tier_history", ["customer_id"])


def downgrade() -> None:
    op.drop_table("tier_history")
    op.drop_table("qualifying_activity")
    op.drop_table("customers")
    op.drop_table("outbox")
    op.drop_table("inbox")
