"""Rewards and coupons (product §7): the reward catalogue and the one-time coupons its
redemptions issue.

A reward's `stock` is how many may ever be issued (none: unlimited) and `redeemed` how many
were: a redemption takes one by a conditional UPDATE of `redeemed`, so the stock is never
oversold. A coupon is the code a member shows at a till; `redemption_id` is the ledger entry
that paid for it; once used it keeps where (partner, store, purchase) and when; once expired
unused, the points it gave back (none when forfeited).

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
    op.create_table(
        "rewards",
        sa.Column("reward_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("points_cost", sa.Integer, nullable=False),
        sa.Column("value", sa.Numeric(12, 2)),
        sa.Column("partner_id", sa.Text),
        sa.Column("min_tier", sa.Text),
        sa.Column("stock", sa.Integer),
        sa.Column("redeemed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("per_customer_limit", sa.Integer),
        sa.Column("starts_at", sa.DateTime(timezone=True)),
        sa.Column("ends_at", sa.DateTime(timezone=True)),
        sa.Column("coupon_validity_days", sa.Integer, nullable=False, server_default="30"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("kind IN ('coupon', 'item', 'discount')", name="ck_rewards_kind"),
        sa.CheckConstraint("points_cost > 0", name="ck_rewards_points_cost"),
        sa.CheckConstraint(
            "stock IS NULL OR (stock >= 0 AND redeemed <= stock)", name="ck_rewards_stock"
        ),
        sa.CheckConstraint("redeemed >= 0", name="ck_rewards_redeemed"),
        sa.CheckConstraint(
            "per_customer_limit IS NULL OR per_customer_limit >= 1",
            name="ck_rewards_per_customer_limit",
        ),
        sa.CheckConstraint(
            "coupon_validity_days BETWEEN 1 AND 3650", name="ck_rewards_coupon_validity_days"
        ),
        sa.CheckConstraint(
            "starts_at IS NULL OR ends_at IS NULL OR ends_at > starts_at",
            name="ck_rewards_window",
        ),
    )
    op.create_table(
        "coupons",
        sa.Column("coupon_id", sa.Text, primary_key=True),
        # Normalised: upper case, no dashes.
        sa.Column("code", sa.Text, nullable=False, unique=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("reward_id", sa.Text, sa.ForeignKey("rewards.reward_id"), nullable=False),
        sa.Column("redemption_id", sa.Text, nullable=False, unique=True),
        sa.Column("points", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("redeemed_at", sa.DateTime(timezone=True)),
        sa.Column("partner_id", sa.Text),
        sa.Column("store_id", sa.Text),
        sa.Column("purchase_id", sa.Text),
        sa.Column("expired_at", sa.DateTime(timezone=True)),
        sa.Column("points_returned", sa.Integer),
        sa.CheckConstraint("status IN ('issued', 'redeemed', 'expired')", name="ck_coupons_status"),
        sa.CheckConstraint("points > 0", name="ck_coupons_points"),
    )
    # A member's coupons (their list, and the per-customer limit of a reward).
    op.create_index("ix_coupons_customer_reward", "coupons", ["customer_id", "reward_id"])
    # The expiry job finds the coupons still issued past their expiry, a chunk at a time.
    op.create_index(
        "ix_coupons_issued_expires_at",
        "coupons",
        ["expires_at", "coupon_id"],
        postgresql_where=sa.text("status = 'issued'"),
    )


def downgrade() -> None:
    op.drop_index("ix_coupons_issued_expires_at", table_name="coupons")
    op.drop_index("ix_coupons_customer_reward", table_name="coupons")
    op.drop_table("coupons")
    op.drop_table("rewards")
