"""Targeting: a rule's exact tier and segment, and the read model of segment membership.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RULES = ("stamp_card_rules", "challenge_rules", "surprise_rules")


def upgrade() -> None:
    for table in _RULES:
        op.add_column(table, sa.Column("tier", sa.Text))
        op.add_column(table, sa.Column("segment", sa.Text))
    op.create_table(
        "segment_memberships",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("segment", sa.Text, primary_key=True),
        sa.Column("member", sa.Boolean, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("segment_memberships")
    for table in _RULES:
        op.drop_column(table, "segment")
        op.drop_column(table, "tier")
