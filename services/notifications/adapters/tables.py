"""The notifications database. The schema itself is made by the alembic migrations."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from shared.storage.db import define_inbox, define_outbox
from shared.web.idempotency import define_idempotency_keys

metadata = sa.MetaData()
inbox = define_inbox(metadata)
outbox = define_outbox(metadata)
idempotency_keys = define_idempotency_keys(metadata)

# Personal data: deleted when the customer is erased, never copied elsewhere.
contacts = sa.Table(
    "contacts",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("email", sa.Text),
    sa.Column("phone", sa.Text),
    sa.Column("locale", sa.Text, nullable=False),
    sa.Column("time_zone", sa.Text, nullable=False),
    sa.Column("consent_email", sa.Boolean, nullable=False),
    sa.Column("consent_sms", sa.Boolean, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # Ingest's per-customer sequence; NULL for profiles from before it existed.
    sa.Column("profile_version", sa.BigInteger),
    # The partner that enrolled the customer, whose webhook is told; NULL for older profiles.
    sa.Column("partner_id", sa.Text),
)
# The members behind an address typed at the wallet's sign-in, whatever its case
# (migration 0010).
sa.Index(
    "ix_contacts_email_lower",
    sa.func.lower(contacts.c.email),
    postgresql_where=sa.text("email IS NOT NULL"),
)

# Where each partner is told about its customers. The secret signs the calls, so it is kept
# as it is (an HMAC key cannot be hashed away); it is shown once, when made, and never logged.
partner_webhooks = sa.Table(
    "partner_webhooks",
    metadata,
    sa.Column("partner_id", sa.Text, primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# What the customer chose; deleted with the contact when the customer is erased.
preferences = sa.Table(
    "preferences",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("email", sa.Boolean, nullable=False),
    sa.Column("sms", sa.Boolean, nullable=False),
    sa.Column("quiet_start", sa.Time, nullable=False),
    sa.Column("quiet_end", sa.Time, nullable=False),
    sa.Column("time_zone", sa.Text),
    sa.Column("locale", sa.Text),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# The delivery log: ids, template names and params only, no address and no body.
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("notification_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False, index=True),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("template", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.Column("last_error", sa.Text),
    sa.Column("cause_event_id", sa.Text, nullable=False),
    sa.Column("params", JSONB, nullable=False),
    sa.Column("hold", sa.Text),
    sa.Column("released_as_of", sa.DateTime(timezone=True)),
    # The same event never yields the same message twice, whatever redelivers it.
    sa.UniqueConstraint("cause_event_id", "channel", "template", name="uq_deliveries_cause"),
    sa.CheckConstraint(
        "status IN ('scheduled', 'sent', 'failed', 'suppressed')", name="ck_deliveries_status"
    ),
    sa.Index(
        "ix_deliveries_due",
        "next_attempt_at",
        postgresql_where=sa.text("status = 'scheduled'"),
    ),
    # The dispatcher's transactional lane (migration 0007).
    sa.Index(
        "ix_deliveries_due_by_template",
        "template",
        "next_attempt_at",
        postgresql_where=sa.text("status = 'scheduled'"),
    ),
)

# When each customer last bought (ids and instants only), and the last purchase their latest
# win-back message was for; deleted with the contact when the customer is erased.
purchase_activity = sa.Table(
    "purchase_activity",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("last_purchase_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("win_back_for", sa.DateTime(timezone=True)),
    # The customers awaiting a win-back, in the order the job reads them (migration 0008).
    sa.Index(
        "ix_purchase_activity_awaiting_win_back",
        "last_purchase_at",
        "customer_id",
        postgresql_where=sa.text("win_back_for IS NULL OR win_back_for < last_purchase_at"),
    ),
)
