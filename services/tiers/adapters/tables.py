"""The tiers database. The schema itself is made by the alembic migrations."""

import sqlalchemy as sa

from shared.storage.db import define_inbox, define_outbox
from shared.web.idempotency import define_idempotency_keys

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
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("amount", sa.Numeric(14, 2), nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    # A refund's purchase instant, when known: the calendar year its spend is taken from.
    sa.Column("attributed_at", sa.DateTime(timezone=True)),
    # The other routes: +1 visit a purchase, -1 the refund that refunds it wholly; +1
    # referral a qualifying referral (`referral:<referred id>`, amount 0).
    sa.Column("visits", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Column("referrals", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Column("refunded_activity_id", sa.Text),  # a refund's purchase (since revision 0007)
    # An import's opening tier (`import:<customer id>`, amount 0; since revision 0008).
    sa.Column("tier", sa.Text),
    sa.Index(
        "ix_qualifying_activity_refunded",
        "refunded_activity_id",
        postgresql_where=sa.text("refunded_activity_id IS NOT NULL"),
    ),
    # A member's activity of a day (since revision 0009, instead of customer_id alone).
    sa.Index("ix_qualifying_activity_customer_occurred", "customer_id", "occurred_at"),
)


# The qualifying activity summed per member, UTC day it occurred on and UTC day its spend was
# made (`domain/buckets.py`); and the same per UTC calendar month (`day`, `spent_day`: the
# month's first day), read whole where no instant a decision looks at falls in the month.
# Kept by triggers on qualifying_activity (revision 0009): every statement that inserts,
# deletes or updates activity updates both, set-based.
def _buckets(name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("spent_day", sa.Date, primary_key=True),
        sa.Column("amount", sa.Numeric, nullable=False),
        sa.Column("visits", sa.Integer, nullable=False),
        sa.Column("referrals", sa.Integer, nullable=False),
        sa.Column("activities", sa.Integer, nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_spent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_spent_at", sa.DateTime(timezone=True), nullable=False),
    )


qualifying_buckets = _buckets("qualifying_buckets")
qualifying_months = _buckets("qualifying_months")

# A referred member (customer.enrolled's `referred_by`), waiting until their first purchase
# has been kept past the return window (`qualify-referrals` job): then `qualified`, and a
# referral activity counts for the referrer; or `disqualified` (wholly refunded in time).
referrals = sa.Table(
    "referrals",
    metadata,
    sa.Column("referred_id", sa.Text, primary_key=True),
    sa.Column("referrer_id", sa.Text, nullable=False),
    sa.Column("first_purchase_id", sa.Text),
    sa.Column("first_purchase_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True)),
    sa.Index(
        "ix_referrals_pending",
        "referred_id",
        postgresql_where=sa.text("status = 'pending' AND first_purchase_at IS NOT NULL"),
    ),
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

# A replay after a rule change (see services/tiers/usecases/replay.py): built apart from the
# live tables above, made live by one switch transaction.
tier_replays = sa.Table(
    "tier_replays",
    metadata,
    sa.Column("replay_id", sa.Text, primary_key=True),
    sa.Column("program", sa.Text, nullable=False),  # the program replayed, as canonical JSON
    sa.Column("status", sa.Text, nullable=False),  # running | switched | abandoned
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("events", sa.BigInteger, nullable=False),  # loaded
    sa.Column("skipped", sa.BigInteger, nullable=False),  # unreadable or refused
    sa.Column("switched_at", sa.DateTime(timezone=True)),
    sa.Column("changed", sa.Integer),  # customers whose tier the switch changed
    # Set by the switch from the sequence tier_program_generation: the program of the
    # highest generation is in force (services/tiers/programs.py).
    sa.Column("generation", sa.BigInteger),  # unique where set
)

# Where the replay's reading of each topic partition stands: committed with what it loaded.
tier_replay_offsets = sa.Table(
    "tier_replay_offsets",
    metadata,
    sa.Column("replay_id", sa.Text, primary_key=True),
    sa.Column("topic", sa.Text, primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("next_offset", sa.BigInteger, nullable=False),
)

tier_replay_activity = sa.Table(
    "tier_replay_activity",
    metadata,
    sa.Column("replay_id", sa.Text, primary_key=True),
    sa.Column("activity_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("amount", sa.Numeric(14, 2), nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("refunded_activity_id", sa.Text),  # a refund's purchase; None for a purchase
    sa.Column("tier", sa.Text),  # an import's opening tier
)

# Each customer the replay knows (enrolled or bought), and their rebuilt tier once computed.
tier_replay_customers = sa.Table(
    "tier_replay_customers",
    metadata,
    sa.Column("replay_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("enrolled_at", sa.DateTime(timezone=True)),
    sa.Column("stale", sa.Boolean, nullable=False),  # loaded activity not yet in the tier
    sa.Column("tier", sa.Text),
    sa.Column("since", sa.DateTime(timezone=True)),
    sa.Column("review_at", sa.DateTime(timezone=True)),
)
