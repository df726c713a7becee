"""The outbox's payload kept as written (json), its type and traceparent in columns.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

from shared.storage.migrations import drop_outbox_v3, outbox_v3

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    outbox_v3()


def downgrade() -> None:
    drop_outbox_v3()
