"""Imported members (issue 23): an import's opening tier is kept as a qualifying activity of
its own (`import:<customer id>`, amount 0, dated at the tier's `since`), in the live
activity and in a replay's, so that a replay rebuilds it with the rest of the history.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("qualifying_activity", sa.Column("tier", sa.Text))
    op.add_column("tier_replay_activity", sa.Column("tier", sa.Text))


def downgrade() -> None:
    op.drop_column("tier_replay_activity", "tier")
    op.drop_column("qualifying_activity", "tier")
