"""Priority lanes for the dispatcher: the due messages of a template in due order, so that the
transactional lane (a few templates, few rows) is claimed without reading past a bulk run.

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
    op.create_index(
        "ix_deliveries_due_by_template",
        "deliveries",
        ["template", "next_attempt_at"],
        postgresql_where=sa.text("status = 'scheduled'"),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_due_by_template", table_name="deliveries")
