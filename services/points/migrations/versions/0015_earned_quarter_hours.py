"""The velocity guard reads a member's earnings of a day from quarter-hour sums (issue 24).

The partial index of migration 0010 bounded that read to the day's entries, but each of them
was still visited (a fresh entry is not all-visible, so the index-only scan reads its row): the
read grew with the purchases a member made that day, the costliest statement of a batch of
purchases in the benchmark (17 µs a purchase, bench/README.md). The ledger's insert now keeps,
in the same statement, the points each member earned in each quarter of an hour (kinds `earn`
and `held`, not the `released:` twins of held entries: what the guard counts), and the guard
sums a day's quarters: at most 100 rows a member and day, one for most. Every time zone's
offset since 2000 (the earliest an event may carry, `shared.bounds`) is a whole number of
quarter hours, so a day is whole quarters whatever the program's zone, and the zone may change.
The partial index, no longer read, goes: one index less for every earning to maintain.

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "earned_quarter_hours",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("quarter", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("points", sa.BigInteger, nullable=False),
    )
    # As the ledger's insert keeps them (services/points/adapters/repositories/common.py).
    op.execute(
        "INSERT INTO earned_quarter_hours (customer_id, quarter, points) "
        "SELECT customer_id, date_bin('15 minutes', occurred_at, "
        "TIMESTAMPTZ '2000-01-01 00:00:00+00'), sum(points) FROM ledger_entries "
        "WHERE kind IN ('earn', 'held') AND entry_id NOT LIKE 'released:%' "
        "GROUP BY 1, 2"
    )
    op.drop_index("ix_ledger_entries_earned_days", table_name="ledger_entries")


def downgrade() -> None:
    op.create_index(
        "ix_ledger_entries_earned_days",
        "ledger_entries",
        ["customer_id", "occurred_at"],
        postgresql_include=["points"],
        postgresql_where=sa.text("kind IN ('earn', 'held') AND entry_id NOT LIKE 'released:%'"),
    )
    op.drop_table("earned_quarter_hours")
