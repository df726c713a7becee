"""Initial notifications schema: contacts, deliveries, inbox, outbox.

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from shared.storage.migrations import create_inbox_v1, create_outbox_v1

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_inbox_v1()
    create_outbox_v1()
    op.create_table(
        "contacts",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("email", sa.Text),
        sa.Column("phone", sa.Text),
        sa.Column("locale", sa.Text, nullable=False),
        sa.Column("time_zone", sa.Text, nullable=False),
        sa.Column("consent_email", sa.Boolean, nullable=False),
        sa.Column("consent_sms", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("notification_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("template", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        sa.Column("cause_event_id", sa.Text, nullable=False),
        sa.Column("params", JSONB, nullable=False),
        sa.UniqueConstraint("cause_event_id", "channel", "template", name="uq_deliveries_cause"),
        sa.CheckConstraint(
            "status IN ('scheduled', 'sent', 'failed', 'suppressed')",
            name="ck_deliveries_status",
        ),
    )
    op.create_index("ix_deliveries_customer_id", "deliveries", ["customer_id"])
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'scheduled'"),
    )


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_table("contacts")
    op.drop_table("outbox")
    op.drop_table("inbox")
