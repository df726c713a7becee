"""Points as tender and the settlement (product §7), at a member base's scale.

A redemption pays for at most one purchase: a unique index on `purchases.redemption_id`
(where there is one) holds it, and is what the consumer looks a redemption's purchase up by
when it links a new purchase to the redemption it names. The settlement report and the
points honoured per partner read the spends (redemptions, holds, the releases that give
points back) of a period by `occurred_at`: a partial index on those kinds only, so a report
reads the period's spends and not every earning of the ledger.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ux_purchases_redemption_id",
        "purchases",
        ["redemption_id"],
        unique=True,
        postgresql_where=sa.text("redemption_id IS NOT NULL"),
    )
    # The predicate is written as the reports' queries write it.
    op.create_index(
        "ix_ledger_entries_spends",
        "ledger_entries",
        ["occurred_at"],
        postgresql_where=sa.text("kind IN ('redeem', 'hold', 'release')"),
    )


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_spends", table_name="ledger_entries")
    op.drop_index("ux_purchases_redemption_id", table_name="purchases")
