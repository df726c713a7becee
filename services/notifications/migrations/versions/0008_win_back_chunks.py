"""Win-back at a member base's scale: the customers awaiting a win-back (none since their
last purchase) in (last purchase, customer id) order, the order `win-back` reads them in, a
chunk at a time from where the last one ended. A customer leaves the index once won back, so
a run reads only those it may still have to write to. It replaces the index on
`last_purchase_at` alone, which only that job used (the previous release's query stays
valid without it, only slower during a rollout).

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_purchase_activity_last_purchase_at", table_name="purchase_activity")
    # domain.is_lapsed's second half, written as the job's query writes it.
    op.create_index(
        "ix_purchase_activity_awaiting_win_back",
        "purchase_activity",
        ["last_purchase_at", "customer_id"],
        postgresql_where=sa.text("win_back_for IS NULL OR win_back_for < last_purchase_at"),
    )


def downgrade() -> None:
    op.drop_index("ix_purchase_activity_awaiting_win_back", table_name="purchase_activity")
    op.create_index(
        "ix_purchase_activity_last_purchase_at", "purchase_activity", ["last_purchase_at"]
    )
