"""Feedback: what members said, NPS per partner and store, feedback rewards.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _instant(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("feedback_key", sa.Text, primary_key=True),
        sa.Column("feedback_id", sa.Text, nullable=False),
        sa.Column("partner_id", sa.Text, nullable=False),
        sa.Column("store_id", sa.Text),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("purchase_key", sa.Text),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("score", sa.SmallInteger),
        sa.Column("comment", sa.Text),
        _instant("given_at"),
        sa.CheckConstraint("score BETWEEN 0 AND 10", name="ck_feedback_score_range"),
    )
    op.create_index("ix_feedback_customer_id", "feedback", ["customer_id"])
    op.create_index("ix_feedback_nps", "feedback", ["partner_id", "store_id", "given_at"])
    op.create_table(
        "feedback_rewards",
        sa.Column("purchase_key", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("feedback_key", sa.Text, nullable=False),
        sa.Column("grant_id", sa.Text, nullable=False, unique=True),
        _instant("granted_at"),
    )
    op.create_index("ix_feedback_rewards_customer_id", "feedback_rewards", ["customer_id"])
    op.create_table(
        "feedback_reward",
        sa.Column("id", sa.SmallInteger, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("reward_points", sa.Integer),
        sa.Column("reward_id", sa.Text),
        sa.Column("kinds", ARRAY(sa.Text), nullable=False),
        _instant("updated_at"),
        sa.CheckConstraint("id = 1", name="ck_feedback_reward_single"),
    )
    op.create_table(
        "feedback_erased_members",
        sa.Column("customer_id", sa.Text, primary_key=True),
        _instant("erased_at"),
    )


def downgrade() -> None:
    for table in ("feedback_erased_members", "feedback_reward", "feedback_rewards", "feedback"):
        op.drop_table(table)
