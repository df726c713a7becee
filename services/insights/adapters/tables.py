"""The insights database: the facts kept from events, segments and their members. The schema
itself is made by the alembic migrations."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from shared.storage.db import define_inbox, define_outbox
from shared.web.idempotency import define_idempotency_keys

metadata = sa.MetaData()
inbox = define_inbox(metadata)
outbox = define_outbox(metadata)
idempotency_keys = define_idempotency_keys(metadata)


def _instant(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _money(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.Numeric(14, 2), nullable=False)


# Every member insights has heard of (a profile, or any event naming them first). The row is
# also what the consumer and the `segments` job lock, in id order, before re-evaluating one.
members = sa.Table(
    "members",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("partner_id", sa.Text),
    _instant("enrolled_at", nullable=True),
    sa.Column("referred_by", sa.Text),
    sa.Column("profile_version", sa.BigInteger),
    sa.Index("ix_members_referred_by", "referred_by"),
)
# Members erased: their later events are dropped.
erased_members = sa.Table(
    "erased_members",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    _instant("erased_at"),
)
tier_history = sa.Table(
    "tier_history",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("effective_at", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("tier", sa.Text, nullable=False),
)
purchases = sa.Table(
    "purchases",
    metadata,
    sa.Column("purchase_key", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("purchase_id", sa.Text, nullable=False),
    sa.Column("partner_id", sa.Text, nullable=False),
    sa.Column("store_id", sa.Text),
    _instant("occurred_at"),
    _money("total"),
    # Covering what a member's activity reads: a member's purchases are scattered over the
    # table (they arrive among everyone's), and an index-only scan spares a heap page each.
    sa.Index(
        "ix_purchases_customer_id",
        "customer_id",
        "occurred_at",
        postgresql_include=["purchase_key", "purchase_id", "partner_id", "store_id", "total"],
    ),
    sa.Index("ix_purchases_occurred_at", "occurred_at"),
)
refunds = sa.Table(
    "refunds",
    metadata,
    sa.Column("refund_key", sa.Text, primary_key=True),
    sa.Column("purchase_key", sa.Text, nullable=False),
    sa.Column("customer_id", sa.Text, nullable=False),
    _money("amount"),
    _instant("occurred_at"),
    sa.Index("ix_refunds_purchase_key", "purchase_key"),
    sa.Index("ix_refunds_customer_id", "customer_id"),
)
# Purchases points applied a campaign or a personal offer to (`fedelta.points.earned`).
campaign_purchases = sa.Table(
    "campaign_purchases",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("purchase_id", sa.Text, primary_key=True),
)
# Points earned (+), redeemed, reversed, expired (-), adjusted (either), one row per event.
points_movements = sa.Table(
    "points_movements",
    metadata,
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("points", sa.BigInteger, nullable=False),
    _instant("occurred_at"),
    sa.Index("ix_points_movements_customer_id", "customer_id", "occurred_at"),
    sa.Index("ix_points_movements_occurred_at", "occurred_at"),
)
# Free perks a member used: engagement's rewards and coupons redeemed; a reward taken back
# has a revocation (kept apart, so it counts whichever of the two events comes first).
perks = sa.Table(
    "perks",
    metadata,
    sa.Column("perk_key", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    _instant("used_at"),
    sa.Index("ix_perks_customer_id", "customer_id"),
)
perk_revocations = sa.Table(
    "perk_revocations",
    metadata,
    sa.Column("perk_key", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    _instant("revoked_at"),
    sa.Index("ix_perk_revocations_customer_id", "customer_id"),
)
# Scores only: insights keeps no comment.
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("feedback_key", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("partner_id", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("score", sa.SmallInteger),
    _instant("given_at"),
    sa.Index("ix_feedback_customer_id", "customer_id"),
    sa.Index("ix_feedback_given_at", "given_at"),
)
segment_definitions = sa.Table(
    "segment_definitions",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("criteria", JSONB, nullable=False),
    _instant("created_at"),
)
segment_members = sa.Table(
    "segment_members",
    metadata,
    sa.Column("segment", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, primary_key=True),
    _instant("since"),
    sa.Column("reasons", ARRAY(sa.Text), nullable=False),
    sa.Index("ix_segment_members_customer_id", "customer_id"),
)
# The quintile breakpoints of the last `segments` run (one row).
rfm_breakpoints = sa.Table(
    "rfm_breakpoints",
    metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True),
    _instant("as_of"),
    sa.Column("members", sa.Integer, nullable=False),
    sa.Column("recency_days", ARRAY(sa.Float), nullable=False),
    sa.Column("frequency", ARRAY(sa.Float), nullable=False),
    sa.Column("monetary", ARRAY(sa.Float), nullable=False),
)
