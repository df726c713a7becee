"""Lots and holds: which lots each spend, hold and expiry drew from; holds at the till;
the expiry warnings given.

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
    op.create_table(
        "allocations",
        sa.Column("entry_id", sa.Text, primary_key=True),
        sa.Column("lot_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("points", sa.Integer, nullable=False),
        sa.CheckConstraint("points <> 0", name="ck_allocations_points"),
    )
    # The balance loads a customer's allocations; the expiry job those of a set of lots.
    op.create_index("ix_allocations_customer_id", "allocations", ["customer_id"])
    op.create_index("ix_allocations_lot_id", "allocations", ["lot_id"])
    op.create_table(
        "holds",
        sa.Column("hold_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("points", sa.Integer, nullable=False),
        sa.Column("reward", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "status IN ('held', 'captured', 'voided', 'lapsed')", name="ck_holds_status"
        ),
    )
    # A lot is warned of its expiry once.
    op.create_table(
        "expiry_warnings",
        sa.Column("lot_id", sa.Text, primary_key=True),
        sa.Column("warned_at", sa.DateTime(timezone=True), nullable=False),
    )
    # The expiry jobs look for lots by when they expire.
    op.create_index("ix_ledger_entries_expires_at", "ledger_entries", ["expires_at"])
    # The lapse job finds the holds still held past their timeout.
    op.create_index(
        "ix_holds_held_expires_at",
        "holds",
        ["expires_at"],
        postgresql_where=sa.text("status = 'held'"),
    )


def downgrade() -> None:
    op.drop_index("ix_holds_held_expires_at", table_name="holds")
    op.drop_index("ix_ledger_entries_expires_at", table_name="ledger_entries")
    op.drop_table("expiry_warnings")
    op.drop_table("holds")
    op.drop_index("ix_allocations_lot_id", table_name="allocations")
    op.drop_index("ix_allocations_customer_id", table_name="allocations")
    op.drop_table("allocations")
