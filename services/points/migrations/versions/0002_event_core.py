"""The batched event core: inbox purged by age, outbox relay woken on commit.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from shared.storage.migrations import drop_event_core_v2, event_core_v2

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    event_core_v2()


def downgrade() -> None:
    drop_event_core_v2()
