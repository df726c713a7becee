"""SMS and partner webhooks: the partner that enrolled each customer, the partners' webhooks;
points digests gathering earnings are marked as held by their window, so jobs release them.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("contacts", sa.Column("partner_id", sa.Text))
    op.create_table(
        "partner_webhooks",
        sa.Column("partner_id", sa.Text, primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.execute(
        "UPDATE deliveries SET hold = 'digest window' "
        "WHERE template = 'points_earned' AND status = 'scheduled' AND attempts = 0 "
        "AND hold IS NULL AND released_as_of IS NULL"
    )


def downgrade() -> None:
    op.execute("UPDATE deliveries SET hold = NULL WHERE hold = 'digest window'")
    op.drop_table("partner_webhooks")
    op.drop_column("contacts", "partner_id")
