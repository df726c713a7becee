"""Initial ingest schema: partners, customers, purchases, refunds, outbox.

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.storage.migrations import create_outbox_v1

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_outbox_v1()
    op.create_table(
        "partners",
        sa.Column("partner_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("api_key_hash", sa.Text, nullable=False, unique=True),
        sa.Column("signing_secret", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    )
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("partner_id", sa.Text, nullable=False),
        sa.Column("email", sa.Text),
        sa.Column("phone", sa.Text),
        sa.Column("locale", sa.Text, nullable=False),
        sa.Column("time_zone", sa.Text, nullable=False),
        sa.Column("consent_email", sa.Boolean, nullable=False),
        sa.Column("consent_sms", sa.Boolean, nullable=False),
        sa.Column("referred_by", sa.Text),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_hash", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
    )
    op.create_table(
        "purchases",
        sa.Column("partner_id", sa.Text, primary_key=True),
        sa.Column("purchase_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("currency", sa.Text, nullable=False),
        sa.Column("total", sa.Numeric(14, 2), nullable=False),
        sa.Column("refunded", sa.Numeric(14, 2), nullable=False, server_default="0"),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_hash", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.CheckConstraint("total > 0", name="ck_purchases_total_positive"),
        sa.CheckConstraint(
            "refunded >= 0 AND refunded <= total", name="ck_purchases_refunded_range"
        ),
    )
    op.create_table(
        "refunds",
        sa.Column("partner_id", sa.Text, primary_key=True),
        sa.Column("refund_id", sa.Text, primary_key=True),
        sa.Column("purchase_id", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("amount", sa.Numeric(14, 2), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_hash", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id", "purchase_id"], ["purchases.partner_id", "purchases.purchase_id"]
        ),
        sa.CheckConstraint("amount > 0", name="ck_refunds_amount_positive"),
    )


def downgrade() -> None:
    op.drop_table("refunds")
    op.drop_table("purchases")
    op.drop_table("customers")
    op.drop_table("partners")
    op.drop_table("outbox")
