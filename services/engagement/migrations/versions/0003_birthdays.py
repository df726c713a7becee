"""Birthdays: members' birthdays and time zones, the birthday reward and its grants.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("members", sa.Column("birthday_month", sa.SmallInteger))
    op.add_column("members", sa.Column("birthday_day", sa.SmallInteger))
    op.add_column("members", sa.Column("time_zone", sa.Text))
    op.add_column("members", sa.Column("profile_version", sa.BigInteger))
    op.create_index(
        "ix_members_birthday",
        "members",
        ["birthday_month", "birthday_day", "time_zone", "customer_id"],
        postgresql_where=sa.text("birthday_month IS NOT NULL"),
    )
    op.create_table(
        "birthday_reward",
        sa.Column("id", sa.Boolean, primary_key=True),
        sa.Column("reward_points", sa.Integer),
        sa.Column("reward_id", sa.Text),
        sa.Column("min_tier", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id", name="ck_birthday_reward_one_row"),
    )
    op.create_table(
        "birthday_grants",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("grant_id", sa.Text, nullable=False, unique=True),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("birthday_grants")
    op.drop_table("birthday_reward")
    op.drop_index("ix_members_birthday", table_name="members")
    for column in ("profile_version", "time_zone", "birthday_day", "birthday_month"):
        op.drop_column("members", column)
