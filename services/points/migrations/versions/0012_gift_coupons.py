"""Engagement's catalogue rewards as gift coupons (issue 20): a coupon points issues for an
engagement grant of a `reward_id`, with no points spent.

A gift coupon names its grant (`grant_id`, one coupon per grant) and costs 0 points; its
`redemption_id` is the grant id itself (no ledger entry: no points moved).
A revoked grant voids its coupon while unused (status `voided`); `revoked_at` records the
revocation on the coupon whatever its state (a used one keeps its state: nothing to take
back).

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("coupons", sa.Column("grant_id", sa.Text))
    op.add_column("coupons", sa.Column("revoked_at", sa.DateTime(timezone=True)))
    op.create_index(
        "ux_coupons_grant_id",
        "coupons",
        ["grant_id"],
        unique=True,
        postgresql_where=sa.text("grant_id IS NOT NULL"),
    )
    op.drop_constraint("ck_coupons_status", "coupons", type_="check")
    op.create_check_constraint(
        "ck_coupons_status", "coupons", "status IN ('issued', 'redeemed', 'expired', 'voided')"
    )
    op.drop_constraint("ck_coupons_points", "coupons", type_="check")
    op.create_check_constraint(
        "ck_coupons_points", "coupons", "points > 0 OR (points = 0 AND grant_id IS NOT NULL)"
    )


def downgrade() -> None:
    op.execute("DELETE FROM coupons WHERE grant_id IS NOT NULL")
    op.drop_constraint("ck_coupons_points", "coupons", type_="check")
    op.create_check_constraint("ck_coupons_points", "coupons", "points > 0")
    op.drop_constraint("ck_coupons_status", "coupons", type_="check")
    op.create_check_constraint(
        "ck_coupons_status", "coupons", "status IN ('issued', 'redeemed', 'expired')"
    )
    op.drop_index("ux_coupons_grant_id", table_name="coupons")
    op.drop_column("coupons", "revoked_at")
    op.drop_column("coupons", "grant_id")
