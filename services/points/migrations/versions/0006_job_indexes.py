"""The jobs at a member base's scale: the lots in (expiry, id) order, the order
`warn-expiring` and `expire-points` read them in, a chunk at a time from where the last one
ended, without reading or sorting every lot in the window for each chunk. It replaces the
index on `expires_at` alone, which only those jobs used: beside it, PostgreSQL chose to read
every lot of the window and sort them, for every chunk. Dropping it leaves the previous
release's queries valid (an index is never read for what a query answers), only its expiry
jobs slower during a rollout.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_ledger_entries_expires_at", table_name="ledger_entries")
    # Only lots (domain.lots.is_lot): the predicate is written as the jobs' query writes it.
    op.create_index(
        "ix_ledger_entries_lots",
        "ledger_entries",
        ["expires_at", "entry_id"],
        postgresql_where=sa.text("kind IN ('earn', 'bonus', 'adjust') AND points > 0"),
    )


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_lots", table_name="ledger_entries")
    op.create_index("ix_ledger_entries_expires_at", "ledger_entries", ["expires_at"])
