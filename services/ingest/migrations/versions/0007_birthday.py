"""Customers' birthday (issue 23): an optional calendar date in the profile, carried by
`customer.enrolled` and `customer.updated` like the rest of it.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("birthday", sa.Date, nullable=True))


def downgrade() -> None:
    op.drop_column("customers", "birthday")
