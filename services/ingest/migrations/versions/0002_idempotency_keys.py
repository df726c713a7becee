"""Idempotency-Key: the first answer of each keyed call, for its retries.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

from shared.storage.migrations import create_idempotency_keys_v1

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_idempotency_keys_v1()


def downgrade() -> None:
    op.drop_table("idempotency_keys")
