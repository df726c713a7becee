"""The points database. The schema itself is made by the alembic migrations."""

import sqlalchemy as sa

from shared.db import define_inbox, define_outbox

metadata = sa.MetaData()
inbox = define_inbox(metadata)
outbox = define_outbox(metadata)

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("partner_id", sa.Text, nullable=False),
    sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
)

ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    # `seq` orders the ledger and pages it; `entry_id` is the public id.
    sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("entry_id", sa.Text, nullable=False, unique=True),
    sa.Column("customer_id", sa.Text, nullable=False, index=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("points", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("available_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
    sa.Column("purchase_id", sa.Text),
)

# The tier each customer has, as told by the tiers service, for earning multipliers.
customer_tiers = sa.Table(
    "customer_tiers",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("tier", sa.Text, nullable=False),
    sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
)
