"""Tiers by referrals and visits (issue 25): each qualifying activity also moves visits (+1 a
purchase, -1 the refund that makes it wholly refunded) and referrals (+1 a qualifying
referral); a refund names its purchase; and the referrals tiers learns from the customers
topic wait in `referrals` until their first purchase has been kept past the return window.

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
    op.add_column(
        "qualifying_activity",
        sa.Column("visits", sa.SmallInteger, nullable=False, server_default="0"),
    )
    op.add_column(
        "qualifying_activity",
        sa.Column("referrals", sa.SmallInteger, nullable=False, server_default="0"),
    )
    op.add_column("qualifying_activity", sa.Column("refunded_activity_id", sa.Text))
    # Purchases recorded before this revision are visits. Refunds recorded before it do not
    # name their purchase: a purchase they refunded wholly still counts as a visit.
    op.execute("UPDATE qualifying_activity SET visits = 1 WHERE activity_id LIKE 'purchase:%'")
    op.create_index(
        "ix_qualifying_activity_refunded",
        "qualifying_activity",
        ["refunded_activity_id"],
        postgresql_where=sa.text("refunded_activity_id IS NOT NULL"),
    )
    op.create_table(
        "referrals",
        sa.Column("referred_id", sa.Text, primary_key=True),
        sa.Column("referrer_id", sa.Text, nullable=False),
        sa.Column("first_purchase_id", sa.Text),
        sa.Column("first_purchase_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.Text, nullable=False),  # pending | qualified | disqualified
        sa.Column("decided_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "ix_referrals_pending",
        "referrals",
        ["referred_id"],
        postgresql_where=sa.text("status = 'pending' AND first_purchase_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_referrals_pending", table_name="referrals")
    op.drop_table("referrals")
    op.drop_index("ix_qualifying_activity_refunded", table_name="qualifying_activity")
    op.drop_column("qualifying_activity", "refunded_activity_id")
    op.drop_column("qualifying_activity", "referrals")
    op.drop_column("qualifying_activity", "visits")
