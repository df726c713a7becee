"""Reviews and overrides: each change's next review and actor in the history, the downgrade
warnings already given (one per review), the kept answers of staff overrides.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from shared.storage.migrations import create_idempotency_keys_v1

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Changes recorded before this revision have neither: they stay unknown rather than guessed.
    op.add_column("tier_history", sa.Column("review_at", sa.DateTime(timezone=True)))
    op.add_column("tier_history", sa.Column("actor", sa.Text))
    op.create_index("ix_customers_review_at", "customers", ["review_at"])
    op.create_table(
        "downgrade_warnings",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("review_at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("warned_at", sa.DateTime(timezone=True), nullable=False),
    )
    create_idempotency_keys_v1()
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", "idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_table("downgrade_warnings")
    op.drop_index("ix_customers_review_at", "customers")
    op.drop_column("tier_history", "actor")
    op.drop_column("tier_history", "review_at")
