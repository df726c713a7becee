"""Earning by the formula: campaigns, the rules behind each entry, idempotency keys.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

from shared.storage.migrations import create_idempotency_keys_v1

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "ledger_entries",
        sa.Column("rule_ids", ARRAY(sa.Text), nullable=False, server_default="{}"),
    )
    op.create_table(
        "campaigns",
        sa.Column("campaign_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("multiplier", sa.Numeric(5, 2)),
        sa.Column("bonus", sa.Integer),
        sa.Column("partner_id", sa.Text),
        sa.Column("store_id", sa.Text),
        sa.Column("category", sa.Text),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("validity_days", sa.Integer),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("starts_at < ends_at", name="ck_campaigns_period"),
        sa.CheckConstraint(
            "multiplier IS NOT NULL OR bonus IS NOT NULL", name="ck_campaigns_effect"
        ),
    )
    # A batch loads the campaigns overlapping its purchases' times.
    op.create_index("ix_campaigns_period", "campaigns", ["starts_at", "ends_at"])
    create_idempotency_keys_v1()
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_campaigns_period", table_name="campaigns")
    op.drop_table("campaigns")
    op.drop_column("ledger_entries", "rule_ids")
