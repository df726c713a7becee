"""Profile versions: a per-customer sequence, so that consumers can keep the newest profile.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing profiles start at 1 (their enrolment); their next change is version 2.
    op.add_column(
        "customers",
        sa.Column("version", sa.BigInteger, nullable=False, server_default="1"),
    )
    op.create_check_constraint("ck_customers_version_positive", "customers", "version >= 1")


def downgrade() -> None:
    op.drop_constraint("ck_customers_version_positive", "customers", type_="check")
    op.drop_column("customers", "version")
