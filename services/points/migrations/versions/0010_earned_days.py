"""The velocity guard reads a member's earnings of one day, whatever their history (issue 24).

Each batch of purchases asks what its buyers earned already on each purchase's day (kinds
`earn` and `held`, not the `released:` twins of held entries). Through the index on
`customer_id` alone that read visited every entry of each buyer, so its cost grew with a
member's history (79 µs per purchase with 1,150 entries each, bench/README.md); this partial
index on (customer, instant), with the points, reads the day's earnings only. Its predicate is
written as the consumer's query writes it.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_ledger_entries_earned_days",
        "ledger_entries",
        ["customer_id", "occurred_at"],
        postgresql_include=["points"],
        postgresql_where=sa.text("kind IN ('earn', 'held') AND entry_id NOT LIKE 'released:%'"),
    )


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_earned_days", table_name="ledger_entries")
