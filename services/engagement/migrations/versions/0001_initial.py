"""Initial engagement schema: members, stamp cards and challenges with their rules, badges,
the refunds applied, and the event core (inbox, outbox, idempotency keys).

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


# The engagement tables and their indexes, as they were first made.
_TABLES = (
    "CREATE TABLE badges ( customer_id TEXT NOT NULL, badge TEXT NOT NULL, challenge_id "
    "TEXT NOT NULL, earned_at TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY "
    "(customer_id, badge) )",
    "CREATE TABLE challenge_contributions ( challenge_id TEXT NOT NULL, customer_id TEXT "
    "NOT NULL, source_key TEXT NOT NULL, occurred_at TIMESTAMP WITH TIME ZONE NOT NULL, "
    "amount NUMERIC(14, 2) NOT NULL, total NUMERIC(14, 2) NOT NULL, refunded NUMERIC(14, "
    "2) NOT NULL, partner_id TEXT, categories TEXT[] NOT NULL, PRIMARY KEY (challenge_id,"
    " customer_id, source_key) )",
    "CREATE INDEX ix_challenge_contributions_customer_id ON challenge_contributions (customer_id)",
    "CREATE INDEX ix_challenge_contributions_source_key ON challenge_contributions (source_key)",
    "CREATE TABLE challenge_progress ( challenge_id TEXT NOT NULL, customer_id TEXT NOT "
    "NULL, completed_at TIMESTAMP WITH TIME ZONE, PRIMARY KEY (challenge_id, customer_id)"
    " )",
    "CREATE INDEX ix_challenge_progress_customer_id ON challenge_progress (customer_id)",
    "CREATE TABLE challenge_rules ( challenge_id TEXT NOT NULL, name TEXT NOT NULL, "
    "goal_kind TEXT NOT NULL, target NUMERIC(14, 2) NOT NULL, goal_category TEXT, "
    "goal_partner_id TEXT, reward_points INTEGER, reward_id TEXT, badge TEXT, min_tier "
    "TEXT, starts_at TIMESTAMP WITH TIME ZONE NOT NULL, ends_at TIMESTAMP WITH TIME ZONE "
    "NOT NULL, created_at TIMESTAMP WITH TIME ZONE NOT NULL, ended_at TIMESTAMP WITH TIME"
    " ZONE, PRIMARY KEY (challenge_id) )",
    "CREATE TABLE members ( customer_id TEXT NOT NULL, tier TEXT, enrolled_at TIMESTAMP "
    "WITH TIME ZONE, referred_by TEXT, first_purchase_key TEXT, first_purchase_at "
    "TIMESTAMP WITH TIME ZONE, first_purchase_total NUMERIC(14, 2), PRIMARY KEY "
    "(customer_id) )",
    "CREATE TABLE refunds_seen ( refund_key TEXT NOT NULL, customer_id TEXT NOT NULL, "
    "PRIMARY KEY (refund_key) )",
    "CREATE INDEX ix_refunds_seen_customer_id ON refunds_seen (customer_id)",
    "CREATE TABLE stamp_card_rules ( card_id TEXT NOT NULL, name TEXT NOT NULL, "
    "stamps_required INTEGER NOT NULL, per TEXT NOT NULL, partner_id TEXT, store_id TEXT,"
    " category TEXT, min_amount NUMERIC(14, 2), min_tier TEXT, reward_points INTEGER, "
    "reward_id TEXT, starts_at TIMESTAMP WITH TIME ZONE NOT NULL, ends_at TIMESTAMP WITH "
    "TIME ZONE, created_at TIMESTAMP WITH TIME ZONE NOT NULL, ended_at TIMESTAMP WITH "
    "TIME ZONE, PRIMARY KEY (card_id) )",
    "CREATE TABLE stamp_cards ( card_id TEXT NOT NULL, customer_id TEXT NOT NULL, stamps "
    "INTEGER NOT NULL, completed_count INTEGER NOT NULL, PRIMARY KEY (card_id, "
    "customer_id) )",
    "CREATE INDEX ix_stamp_cards_customer_id ON stamp_cards (customer_id)",
    "CREATE TABLE stamp_completions ( grant_id TEXT NOT NULL, card_id TEXT NOT NULL, "
    "customer_id TEXT NOT NULL, number INTEGER NOT NULL, purchase_key TEXT NOT NULL, "
    "completed_at TIMESTAMP WITH TIME ZONE NOT NULL, revoked_at TIMESTAMP WITH TIME ZONE,"
    " PRIMARY KEY (grant_id) )",
    "CREATE INDEX ix_stamp_completions_customer_id ON stamp_completions (customer_id)",
    "CREATE UNIQUE INDEX ux_stamp_completions_standing ON stamp_completions (card_id, "
    "customer_id, number) WHERE revoked_at IS NULL",
    "CREATE TABLE stamp_purchases ( card_id TEXT NOT NULL, purchase_key TEXT NOT NULL, "
    "customer_id TEXT NOT NULL, given INTEGER NOT NULL, total NUMERIC(14, 2) NOT NULL, "
    "refunded NUMERIC(14, 2) NOT NULL, PRIMARY KEY (card_id, purchase_key) )",
    "CREATE INDEX ix_stamp_purchases_customer_id ON stamp_purchases (customer_id)",
    "CREATE INDEX ix_stamp_purchases_purchase_key ON stamp_purchases (purchase_key)",
)


def upgrade() -> None:
    create_inbox_v1()
    create_outbox_v1()
    create_idempotency_keys_v1()
    event_core_v2()
    for statement in _TABLES:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("stamp_purchases")
    op.drop_table("stamp_completions")
    op.drop_table("stamp_cards")
    op.drop_table("stamp_card_rules")
    op.drop_table("refunds_seen")
    op.drop_table("members")
    op.drop_table("challenge_rules")
    op.drop_table("challenge_progress")
    op.drop_table("challenge_contributions")
    op.drop_table("badges")
    op.execute("DROP TRIGGER outbox_notify ON outbox")
    op.execute("DROP FUNCTION fedelta_outbox_notify()")
    op.drop_table("idempotency_keys")
    op.drop_table("outbox")
    op.drop_table("inbox")
