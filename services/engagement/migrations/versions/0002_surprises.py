"""Surprise rewards: rules, draws, daily budgets and cooldowns.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _instant(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "surprise_rules",
        sa.Column("surprise_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("chance", sa.Numeric(10, 9), nullable=False),
        sa.Column("partner_id", sa.Text),
        sa.Column("store_id", sa.Text),
        sa.Column("category", sa.Text),
        sa.Column("min_tier", sa.Text),
        sa.Column("reward_points", sa.Integer),
        sa.Column("reward_id", sa.Text),
        sa.Column("daily_budget", sa.Integer),
        sa.Column("cooldown_days", sa.Integer),
        _instant("starts_at"),
        _instant("ends_at", nullable=True),
        _instant("created_at"),
        _instant("ended_at", nullable=True),
    )
    op.create_table(
        "surprise_wins",
        sa.Column("surprise_id", sa.Text, primary_key=True),
        sa.Column("purchase_key", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("grant_id", sa.Text, nullable=False, unique=True),
        _instant("won_at"),
        sa.Column("total", sa.Numeric(14, 2), nullable=False),
        sa.Column("refunded", sa.Numeric(14, 2), nullable=False),
        _instant("revoked_at", nullable=True),
    )
    op.create_index("ix_surprise_wins_customer_id", "surprise_wins", ["customer_id"])
    op.create_index("ix_surprise_wins_purchase_key", "surprise_wins", ["purchase_key"])
    op.create_table(
        "surprise_budgets",
        sa.Column("surprise_id", sa.Text, primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("spent", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("surprise_budgets")
    op.drop_table("surprise_wins")
    op.drop_table("surprise_rules")
