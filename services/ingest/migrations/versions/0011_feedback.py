"""Members' feedback: the feedback ids ingest accepted, per partner, with
their member (an erasure writes a tombstone of each on the feedback topic) and the request's
fingerprint (a retry is answered as the first time, another body under the id is a 409). The
comment itself is never stored here: it travels in the event only.

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
        "feedback",
        sa.Column("partner_id", sa.Text, primary_key=True),
        sa.Column("feedback_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("request_hash", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_feedback_customer_id", "feedback", ["customer_id"])


def downgrade() -> None:
    op.drop_table("feedback")
