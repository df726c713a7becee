"""The coalition on the ledger (product §7): every entry may name a partner, a store and a
reward. On a lot (earn, bonus) the partner is the one that issued the points (the purchase's,
or the enrolling partner's for a welcome); on a spend (redeem, hold) the one whose till took
them, or that honours the reward; none is the program itself (staff adjustments, an
administrator's redemption). Holds keep the same three, for their capture. A purchase keeps
the redemption that paid for part of it (points as tender).

The earn entries written before this revision get their purchase's partner, so the
settlement report covers them too.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("ledger_entries", "holds"):
        op.add_column(table, sa.Column("partner_id", sa.Text))
        op.add_column(table, sa.Column("store_id", sa.Text))
        op.add_column(table, sa.Column("reward_id", sa.Text))
    op.add_column("purchases", sa.Column("redemption_id", sa.Text))
    op.execute(
        "UPDATE ledger_entries e SET partner_id = p.partner_id FROM purchases p "
        "WHERE e.kind = 'earn' AND e.purchase_id = p.purchase_id "
        "AND e.customer_id = p.customer_id"
    )
    op.execute(
        "UPDATE ledger_entries e SET partner_id = c.partner_id FROM customers c "
        "WHERE e.kind = 'bonus' AND e.reason = 'welcome' AND e.customer_id = c.customer_id"
    )


def downgrade() -> None:
    op.drop_column("purchases", "redemption_id")
    for table in ("holds", "ledger_entries"):
        op.drop_column(table, "reward_id")
        op.drop_column(table, "store_id")
        op.drop_column(table, "partner_id")
