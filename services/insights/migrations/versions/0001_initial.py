"""Initial insights schema: the facts kept from events (members, tiers, purchases, refunds,
points, perks, feedback scores), segments and their members, the quintile breakpoints, and the
event core (inbox, outbox, idempotency keys).

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence

from alembic import op

from shared.storage.migrations import (
    create_idempotency_keys_v1,
    create_inbox_v1,
    create_outbox_v1,
    event_core_v2,
)

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_TABLES = (
    "CREATE TABLE campaign_purchases ( customer_id TEXT NOT NULL, purchase_id TEXT "
    "NOT NULL, PRIMARY KEY (customer_id, purchase_id) )",
    "CREATE TABLE erased_members ( customer_id TEXT NOT NULL, erased_at TIMESTAMP "
    "WITH TIME ZONE NOT NULL, PRIMARY KEY (customer_id) )",
    "CREATE TABLE feedback ( feedback_key TEXT NOT NULL, customer_id TEXT NOT NULL, "
    "partner_id TEXT NOT NULL, kind TEXT NOT NULL, score SMALLINT, given_at TIMESTAMP "
    "WITH TIME ZONE NOT NULL, PRIMARY KEY (feedback_key) )",
    "CREATE INDEX ix_feedback_customer_id ON feedback (customer_id)",
    "CREATE INDEX ix_feedback_given_at ON feedback (given_at)",
    "CREATE TABLE members ( customer_id TEXT NOT NULL, partner_id TEXT, enrolled_at "
    "TIMESTAMP WITH TIME ZONE, referred_by TEXT, profile_version BIGINT, PRIMARY KEY "
    "(customer_id) )",
    "CREATE INDEX ix_members_referred_by ON members (referred_by)",
    "CREATE TABLE perk_revocations ( perk_key TEXT NOT NULL, customer_id TEXT NOT "
    "NULL, revoked_at TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY (perk_key) )",
    "CREATE INDEX ix_perk_revocations_customer_id ON perk_revocations (customer_id)",
    "CREATE TABLE perks ( perk_key TEXT NOT NULL, customer_id TEXT NOT NULL, kind "
    "TEXT NOT NULL, used_at TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY (perk_key) "
    ")",
    "CREATE INDEX ix_perks_customer_id ON perks (customer_id)",
    "CREATE TABLE points_movements ( event_id TEXT NOT NULL, customer_id TEXT NOT "
    "NULL, kind TEXT NOT NULL, points BIGINT NOT NULL, occurred_at TIMESTAMP WITH "
    "TIME ZONE NOT NULL, PRIMARY KEY (event_id) )",
    "CREATE INDEX ix_points_movements_customer_id ON points_movements (customer_id, occurred_at)",
    "CREATE INDEX ix_points_movements_occurred_at ON points_movements (occurred_at)",
    "CREATE TABLE purchases ( purchase_key TEXT NOT NULL, customer_id TEXT NOT NULL, "
    "purchase_id TEXT NOT NULL, partner_id TEXT NOT NULL, store_id TEXT, occurred_at "
    "TIMESTAMP WITH TIME ZONE NOT NULL, total NUMERIC(14, 2) NOT NULL, PRIMARY KEY "
    "(purchase_key) )",
    "CREATE INDEX ix_purchases_customer_id ON purchases (customer_id, occurred_at) INCLUDE "
    "(purchase_key, purchase_id, partner_id, store_id, total)",
    "CREATE INDEX ix_purchases_occurred_at ON purchases (occurred_at)",
    "CREATE TABLE refunds ( refund_key TEXT NOT NULL, purchase_key TEXT NOT NULL, "
    "customer_id TEXT NOT NULL, amount NUMERIC(14, 2) NOT NULL, occurred_at TIMESTAMP "
    "WITH TIME ZONE NOT NULL, PRIMARY KEY (refund_key) )",
    "CREATE INDEX ix_refunds_customer_id ON refunds (customer_id)",
    "CREATE INDEX ix_refunds_purchase_key ON refunds (purchase_key)",
    "CREATE TABLE rfm_breakpoints ( id SMALLSERIAL NOT NULL, as_of TIMESTAMP WITH "
    "TIME ZONE NOT NULL, members INTEGER NOT NULL, recency_days FLOAT[] NOT NULL, "
    "frequency FLOAT[] NOT NULL, monetary FLOAT[] NOT NULL, PRIMARY KEY (id) )",
    "CREATE TABLE segment_definitions ( name TEXT NOT NULL, description TEXT NOT "
    "NULL, criteria JSONB NOT NULL, created_at TIMESTAMP WITH TIME ZONE NOT NULL, "
    "PRIMARY KEY (name) )",
    "CREATE TABLE segment_members ( segment TEXT NOT NULL, customer_id TEXT NOT NULL, "
    "since TIMESTAMP WITH TIME ZONE NOT NULL, reasons TEXT[] NOT NULL, PRIMARY KEY "
    "(segment, customer_id) )",
    "CREATE INDEX ix_segment_members_customer_id ON segment_members (customer_id)",
    "CREATE TABLE tier_history ( customer_id TEXT NOT NULL, effective_at TIMESTAMP "
    "WITH TIME ZONE NOT NULL, tier TEXT NOT NULL, PRIMARY KEY (customer_id, "
    "effective_at) )",
)


def upgrade() -> None:
    create_inbox_v1()
    create_outbox_v1()
    create_idempotency_keys_v1()
    event_core_v2()
    for statement in _TABLES:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("tier_history")
    op.drop_table("segment_members")
    op.drop_table("segment_definitions")
    op.drop_table("rfm_breakpoints")
    op.drop_table("refunds")
    op.drop_table("purchases")
    op.drop_table("points_movements")
    op.drop_table("perks")
    op.drop_table("perk_revocations")
    op.drop_table("members")
    op.drop_table("feedback")
    op.drop_table("erased_members")
    op.drop_table("campaign_purchases")
    op.execute("DROP TRIGGER outbox_notify ON outbox")
    op.execute("DROP FUNCTION fedelta_outbox_notify()")
    op.drop_table("idempotency_keys")
    op.drop_table("outbox")
    op.drop_table("inbox")
