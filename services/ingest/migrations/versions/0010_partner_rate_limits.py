"""Per-partner rate limits (issue 19): a partner's calls per second for the whole ingest
instance (domain/rate_limits.py); NULL, every existing partner's, is the default from settings.

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
    op.add_column("partners", sa.Column("rate_limit_per_second", sa.Float, nullable=True))
    op.create_check_constraint(
        "partners_rate_limit_positive", "partners", "rate_limit_per_second > 0"
    )


def downgrade() -> None:
    op.drop_column("partners", "rate_limit_per_second")
