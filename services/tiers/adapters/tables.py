"""The tiers database. The schema itself is made by the alembic migrations."""

import sqlalchemy as sa

from shared.db import define_inbox, define_outbox
from shared.idempotency import define_idempotency_keys

metadata = sa.MetaData()
inbox = define_inbox(metadata)
outbox = define_outbox(metadata)
idempotency_keys = define_idempotency_keys(metadata)

# Each customer's current tier. A purchase may arrive before the enrolment (they travel on
# different topics), so a customer can exist before we know when they enrolled.
customers = sa.Table(
    "customers",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("tier", sa.Text, nullable=False),
    sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    sa.Column("review_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("enrolled_at", sa.DateTime(timezone=True)),
)

# What moves qualifying spend: purchases positive, refunds negative. `activity_id` names the
# purchase or refund itself, so one purchase counts once whichever event carried it.
qualifying_activity = sa.Table(
    "qualifying_activity",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("activity_id", sa.Text, nullable=False, unique=True),
    sa.Column("customer_id", sa.Text, nullable=False, index=True),
    sa.Column("amount", sa.Numeric(14, 2), nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    # A refund's purchase instant, when known: the calendar year its spend is taken from.
    sa.Column("attributed_at", sa.DateTime(timezone=True)),
)

tier_history = sa.Table(
    "tier_history",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False, index=True),
    sa.Column("from_tier", sa.Text, nullable=False),
    sa.Column("to_tier", sa.Text, nullable=False),
    sa.Column("direction", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
    # The review the change set, and the staff member behind an override (None: the rules).
    sa.Column("review_at", sa.DateTime(timezone=True)),
    sa.Column("actor", sa.Text),
)

# One downgrade warning per customer and review: a job run again warns nobody twice.
downgrade_warnings = sa.Table(
    "downgrade_warnings",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("review_at", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("warned_at", sa.DateTime(timezone=True), nullable=False),
)
