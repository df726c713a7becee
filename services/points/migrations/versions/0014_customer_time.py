"""A member's entries by (customer, instant) instead of by customer alone.

The velocity guard's read of a day's earnings (migration 0010) is meant to go through the
partial index on (customer, instant); the planner may still prefer the index on `customer_id`
alone when its statistics say members have few entries, and that read then visits every entry
of the buyer (CI once saw this plan). With the instant as the second column of the member's
index, either index the planner takes bounds the read to the day. The index serves every read
by customer as the one it replaces did.

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_ledger_entries_customer_time", "ledger_entries", ["customer_id", "occurred_at"]
    )
    op.drop_index("ix_ledger_entries_customer_id", table_name="ledger_entries")


def downgrade() -> None:
    op.create_index("ix_ledger_entries_customer_id", "ledger_entries", ["customer_id"])
    op.drop_index("ix_ledger_entries_customer_time", table_name="ledger_entries")
