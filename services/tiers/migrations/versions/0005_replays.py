"""Replays after a rule change: the replay, its read positions in the topics, and the state
it rebuilds (raw activity and each customer's tier under the new program), apart from the
live tables until the switch.

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


def upgrade() -> None:
    op.create_table(
        "tier_replays",
        sa.Column("replay_id", sa.Text, primary_key=True),
        sa.Column("program", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("skipped", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("switched_at", sa.DateTime(timezone=True)),
        sa.Column("changed", sa.Integer),
    )
    # One replay runs at a time: a second start resumes it (or abandons it, when asked).
    op.create_index(
        "ux_tier_replays_running",
        "tier_replays",
        [sa.text("(true)")],
        unique=True,
        postgresql_where=sa.text("status = 'running'"),
    )
    op.create_table(
        "tier_replay_offsets",
        sa.Column("replay_id", sa.Text, primary_key=True),
        sa.Column("topic", sa.Text, primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True),
        sa.Column("next_offset", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "tier_replay_activity",
        sa.Column("replay_id", sa.Text, primary_key=True),
        sa.Column("activity_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("amount", sa.Numeric(14, 2), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refunded_activity_id", sa.Text),
    )
    op.create_index(
        "ix_tier_replay_activity_customer", "tier_replay_activity", ["replay_id", "customer_id"]
    )
    op.create_table(
        "tier_replay_customers",
        sa.Column("replay_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("enrolled_at", sa.DateTime(timezone=True)),
        sa.Column("stale", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("tier", sa.Text),
        sa.Column("since", sa.DateTime(timezone=True)),
        sa.Column("review_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "ix_tier_replay_customers_stale",
        "tier_replay_customers",
        ["replay_id", "customer_id"],
        postgresql_where=sa.text("stale"),
    )
    op.create_index(
        "ix_tier_replay_customers_review_at", "tier_replay_customers", ["replay_id", "review_at"]
    )


def downgrade() -> None:
    op.drop_table("tier_replay_customers")
    op.drop_table("tier_replay_activity")
    op.drop_table("tier_replay_offsets")
    op.drop_table("tier_replays")
