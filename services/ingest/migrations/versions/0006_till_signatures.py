"""Till signatures: the signed till calls that spend or reserve points (redemptions, holds),
per partner, with the Idempotency-Key each first came with, so that a captured signed call
sent again under another key is refused; purged by `signed_at` once no instance could accept
the signature any more (services/ingest/domain/till_replays.py).

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "till_signatures",
        sa.Column("partner_id", sa.Text, nullable=False),
        sa.Column("signature_digest", sa.Text, nullable=False),
        sa.Column("idempotency_key", sa.Text, nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("partner_id", "signature_digest"),
    )
    op.create_index("ix_till_signatures_signed_at", "till_signatures", ["signed_at"])


def downgrade() -> None:
    op.drop_index("ix_till_signatures_signed_at", "till_signatures")
    op.drop_table("till_signatures")
