"""The ingest database. The schema itself is made by the alembic migrations."""

import sqlalchemy as sa

from shared.storage.db import define_outbox
from shared.web.idempotency import define_idempotency_keys

metadata = sa.MetaData()
outbox = define_outbox(metadata)
idempotency_keys = define_idempotency_keys(metadata)

partners = sa.Table(
    "partners",
    metadata,
    sa.Column("partner_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("api_key_hash", sa.Text, nullable=False, unique=True),
    # Kept as given: verifying an HMAC needs the secret itself, not a hash of it.
    sa.Column("signing_secret", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    # Calls per second (domain/rate_limits.py); NULL: the default from settings.
    sa.Column("rate_limit_per_second", sa.Float, nullable=True),
)

# The current profile of every customer enrolled here: `customer.updated` carries the full
# profile, and a PATCH only sends what changes, so ingest must keep what the rest is.
# `request_hash` and `event_id` are those of the enrolment, so a retried enrolment gets the
# same answer. `version` counts the profile's states (1 at enrolment, +1 per change, taken
# under the row lock) and travels in the events, so consumers keep the newest one whatever
# order they see them in.
customers = sa.Table(
    "customers",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("partner_id", sa.Text, nullable=False),
    sa.Column("email", sa.Text),
    sa.Column("phone", sa.Text),
    sa.Column("locale", sa.Text, nullable=False),
    sa.Column("time_zone", sa.Text, nullable=False),
    sa.Column("consent_email", sa.Boolean, nullable=False),
    sa.Column("consent_sms", sa.Boolean, nullable=False),
    sa.Column("referred_by", sa.Text),
    # A calendar date (issue 23), erased with the contact data.
    sa.Column("birthday", sa.Date),
    sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False, server_default="1"),
    # Set when the customer was erased: email and phone are gone, consents withdrawn; the row
    # stays, pseudonymous, so that the customer's purchases still resolve.
    sa.Column("erased_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint("version >= 1", name="ck_customers_version_positive"),
)

# Purchase ids are the partner's own, so they are unique per partner only.
purchases = sa.Table(
    "purchases",
    metadata,
    sa.Column("partner_id", sa.Text, primary_key=True),
    sa.Column("purchase_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("total", sa.Numeric(14, 2), nullable=False),
    sa.Column("refunded", sa.Numeric(14, 2), nullable=False, server_default="0"),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.CheckConstraint("total > 0", name="ck_purchases_total_positive"),
    sa.CheckConstraint("refunded >= 0 AND refunded <= total", name="ck_purchases_refunded_range"),
)

refunds = sa.Table(
    "refunds",
    metadata,
    sa.Column("partner_id", sa.Text, primary_key=True),
    sa.Column("refund_id", sa.Text, primary_key=True),
    sa.Column("purchase_id", sa.Text, nullable=False),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("amount", sa.Numeric(14, 2), nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.ForeignKeyConstraint(
        ["partner_id", "purchase_id"], ["purchases.partner_id", "purchases.purchase_id"]
    ),
    sa.CheckConstraint("amount > 0", name="ck_refunds_amount_positive"),
)

# The signed till calls that spend or reserve points (redemptions, holds), per partner: the
# SHA-256 of the signed message and the Idempotency-Key it first came with, so that the same
# signed call under another key is refused (services/ingest/domain/till_replays.py). Kept
# while the signature could be accepted, then purged by `signed_at` (purge-till-signatures).
till_signatures = sa.Table(
    "till_signatures",
    metadata,
    sa.Column("partner_id", sa.Text, primary_key=True),
    sa.Column("signature_digest", sa.Text, primary_key=True),
    sa.Column("idempotency_key", sa.Text, nullable=False),
    sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_till_signatures_signed_at", "signed_at"),
)

# The email addresses an enrolment was welcomed with (issue 19, services/ingest/domain/
# welcomes.py): a SHA-256 of each normalised address, no link to the member; an enrolment
# with an address found here is enrolled without the welcome (migration 0008).
welcomed_emails = sa.Table(
    "welcomed_emails",
    metadata,
    sa.Column("email_hash", sa.Text, primary_key=True),
    sa.Column("welcomed_at", sa.DateTime(timezone=True), nullable=False),
)

# Members' feedback (migration 0011): the ids accepted per partner and their
# member, whose erasure tombstones each on the feedback topic. The comment is never kept here.
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("partner_id", sa.Text, primary_key=True),
    sa.Column("feedback_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    # Blanked when the member is erased (it hashed a body with the comment).
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_feedback_customer_id", "customer_id"),
)
