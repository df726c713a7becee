"""The wallet's sign-in by email (product §10): the members whose contact email is an address
typed at the wallet, found whatever its case, through an index on the lower-cased address (a
partial one: members without an email are never looked up).

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_contacts_email_lower",
        "contacts",
        [sa.text("lower(email)")],
        postgresql_where=sa.text("email IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_contacts_email_lower", table_name="contacts")
