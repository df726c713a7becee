"""Engagement's rewards (issue 20): the grants points has seen, and their revocations.

A grant of points is a ledger entry keyed by the grant (`engagement:<grant_id>`) and its
take-back another (`engagement-revoked:<grant_id>`). Each grant id is also a row here, kept
by the grant or by its revocation, whichever comes first: a revocation may come before its
grant (never on one partition, but be safe), and the grant arriving after it is then not
credited. The primary key serialises the two when two consumers apply them at once (during a
rebalance): the second insert waits for the first transaction and sees its row.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "engagement_grants",
        sa.Column("grant_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("refund_id", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("engagement_grants")
