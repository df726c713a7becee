"""Targeting (issue 21): campaigns for a tier or a segment, the segments each member is in,
and the personal offers points makes (a win-back offer on entering `lifecycle:lapsed`).

`segment_memberships` is a read model of insights' `fedelta.segments.v1`: per member and
segment, the latest change seen (`member`: in or out, and its `changed_at`); an older change
never overwrites a newer one. `personal_offers` holds the offers, each a campaign of one
member, read by member for the purchases of a batch (never with every campaign). An erased
member's rows of both are deleted.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("tier", sa.Text))
    op.add_column("campaigns", sa.Column("segment", sa.Text))
    op.create_table(
        "segment_memberships",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("segment", sa.Text, primary_key=True),
        sa.Column("member", sa.Boolean, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "personal_offers",
        sa.Column("offer_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("multiplier", sa.Numeric(5, 2)),
        sa.Column("bonus", sa.Integer),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("starts_at < ends_at", name="ck_personal_offers_period"),
        sa.CheckConstraint(
            "multiplier IS NOT NULL OR bonus IS NOT NULL", name="ck_personal_offers_effect"
        ),
    )
    # A batch reads its buyers' offers running during its purchases.
    op.create_index(
        "ix_personal_offers_customer_ends_at", "personal_offers", ["customer_id", "ends_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_personal_offers_customer_ends_at", table_name="personal_offers")
    op.drop_table("personal_offers")
    op.drop_table("segment_memberships")
    op.drop_column("campaigns", "segment")
    op.drop_column("campaigns", "tier")
