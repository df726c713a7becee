"""The batched event core: outbox relay woken on commit; kept idempotency keys purged by age.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

from shared.storage.migrations import drop_event_core_v2, event_core_v2

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    event_core_v2(inbox=False)
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", "idempotency_keys")
    drop_event_core_v2(inbox=False)
