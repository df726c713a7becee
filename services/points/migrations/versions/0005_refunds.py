"""Refunds: what a refund needs of the purchase it refunds, and every refund received (one
that arrives before its purchase waits here for it). Referrals: who referred each customer.
Staff adjustments: who made each and why. The velocity guard: staff decisions on held
earnings.

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
    op.add_column("customers", sa.Column("referred_by", sa.Text))
    op.create_table(
        "purchases",
        sa.Column("purchase_key", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("purchase_id", sa.Text, nullable=False),
        sa.Column("total", sa.Numeric(12, 2), nullable=False),
        sa.Column("points", sa.Integer, nullable=False),
        sa.Column("partner_id", sa.Text, nullable=False),
    )
    op.create_table(
        "refunds",
        # The order refunds came in: each reverses the difference to the ones before it.
        sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("refund_key", sa.Text, nullable=False, unique=True),
        sa.Column("purchase_key", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("refund_id", sa.Text, nullable=False),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_refunds_purchase_key", "refunds", ["purchase_key"])
    op.create_table(
        "held_decisions",
        sa.Column("held_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("decision IN ('released', 'rejected')", name="ck_held_decision"),
    )
    op.create_table(
        "adjustments",
        sa.Column("adjustment_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("points", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    # A batch looks for the debtors among its buyers: their reversals only.
    op.create_index(
        "ix_ledger_entries_reversals",
        "ledger_entries",
        ["customer_id"],
        postgresql_where=sa.text("kind = 'reverse'"),
    )


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_reversals", table_name="ledger_entries")
    op.drop_table("adjustments")
    op.drop_table("held_decisions")
    op.drop_index("ix_refunds_purchase_key", table_name="refunds")
    op.drop_table("refunds")
    op.drop_table("purchases")
    op.drop_column("customers", "referred_by")
