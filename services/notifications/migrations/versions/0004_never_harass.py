"""Never harass: the customers' preferences, why a message waits (quiet hours, the daily cap)
and the instant a job released it as of; the kept answers of preference changes.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.storage.migrations import create_idempotency_keys_v1

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "preferences",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("email", sa.Boolean, nullable=False),
        sa.Column("sms", sa.Boolean, nullable=False),
        sa.Column("quiet_start", sa.Time, nullable=False),
        sa.Column("quiet_end", sa.Time, nullable=False),
        sa.Column("time_zone", sa.Text),
        sa.Column("locale", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.add_column("deliveries", sa.Column("hold", sa.Text))
    op.add_column("deliveries", sa.Column("released_as_of", sa.DateTime(timezone=True)))
    # The daily cap counts what a customer was sent in a day.
    op.create_index(
        "ix_deliveries_sent",
        "deliveries",
        ["customer_id", "sent_at"],
        postgresql_where=sa.text("status = 'sent'"),
    )
    create_idempotency_keys_v1()
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", "idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_deliveries_sent", "deliveries")
    op.drop_column("deliveries", "released_as_of")
    op.drop_column("deliveries", "hold")
    op.drop_table("preferences")
