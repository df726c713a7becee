"""Contact versions: the profile's sequence number from ingest, so that only newer ones apply.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: contacts stored from events before versions existed have none, and any
    # versioned profile replaces them.
    op.add_column("contacts", sa.Column("profile_version", sa.BigInteger, nullable=True))


def downgrade() -> None:
    op.drop_column("contacts", "profile_version")
