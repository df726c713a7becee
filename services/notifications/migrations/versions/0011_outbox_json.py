"""The outbox's payload kept as written (json), its type and traceparent in columns.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

from shared.storage.migrations import drop_outbox_v3, outbox_v3

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    outbox_v3()


def downgrade() -> None:
    drop_outbox_v3()
