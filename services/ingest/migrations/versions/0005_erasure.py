"""Erasure: when a customer was erased (their contact data removed, the id row kept so that
purchases still resolve), and outbox rows without a payload, which the relay publishes as
tombstones on the compacted customers topic.

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
    op.add_column("customers", sa.Column("erased_at", sa.DateTime(timezone=True)))
    op.alter_column("outbox", "payload", nullable=True)


def downgrade() -> None:
    # Tombstones not yet published have no payload to keep: they go first.
    op.execute("DELETE FROM outbox WHERE payload IS NULL")
    op.alter_column("outbox", "payload", nullable=False)
    op.drop_column("customers", "erased_at")
