"""The points database. The schema itself is made by the alembic migrations."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from shared.storage.db import define_inbox, define_outbox
from shared.web.idempotency import define_idempotency_keys

metadata = sa.MetaData()
inbox = define_inbox(metadata)
outbox = define_outbox(metadata)
idempotency_keys = define_idempotency_keys(metadata)

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("partner_id", sa.Text, nullable=False),
    sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("referred_by", sa.Text),
)

ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    # `seq` orders the ledger and pages it; `entry_id` is the public id.
    sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("entry_id", sa.Text, nullable=False, unique=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("points", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("available_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True)),
    sa.Column("purchase_id", sa.Text),
    # The rules that produced the entry: base, tier:<name>, campaign:<id>, welcome.
    sa.Column("rule_ids", ARRAY(sa.Text), nullable=False, server_default="{}"),
    # A lot's issuing partner; a spend's honouring partner and store; none: the program
    # (migration 0007).
    sa.Column("partner_id", sa.Text),
    sa.Column("store_id", sa.Text),
    sa.Column("reward_id", sa.Text),
    # The lots in the order the expiry jobs read them, a chunk at a time (migration 0006).
    sa.Index(
        "ix_ledger_entries_lots",
        "expires_at",
        "entry_id",
        postgresql_where=sa.text("kind IN ('earn', 'bonus', 'adjust') AND points > 0"),
    ),
    # The spends of a period, for the settlement and the points honoured (migration 0009).
    sa.Index(
        "ix_ledger_entries_spends",
        "occurred_at",
        postgresql_where=sa.text("kind IN ('redeem', 'hold', 'release')"),
    ),
    # A member's entries in time order; any read of a period of one member is bounded by it
    # (migration 0014).
    sa.Index("ix_ledger_entries_customer_time", "customer_id", "occurred_at"),
)

# What each member earned in each quarter of an hour (kinds `earn` and `held`, not the
# `released:` twins), kept by the ledger's insert, for the velocity guard (migration 0015).
earned_quarter_hours = sa.Table(
    "earned_quarter_hours",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("quarter", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("points", sa.BigInteger, nullable=False),
)

# The tier each customer has, as told by the tiers service, for earning multipliers.
customer_tiers = sa.Table(
    "customer_tiers",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("tier", sa.Text, nullable=False),
    sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
)

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("campaign_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("multiplier", sa.Numeric(5, 2)),
    sa.Column("bonus", sa.Integer),
    sa.Column("partner_id", sa.Text),
    sa.Column("store_id", sa.Text),
    sa.Column("category", sa.Text),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("validity_days", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # Only purchases of members of that tier and in that segment (migration 0013).
    sa.Column("tier", sa.Text),
    sa.Column("segment", sa.Text),
)

# Which lots each spend, hold, release and expiry drew from, and how much (negative: given
# back). What is left of a lot is its points less these: no balance column to drift.
allocations = sa.Table(
    "allocations",
    metadata,
    sa.Column("entry_id", sa.Text, primary_key=True),
    sa.Column("lot_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False, index=True),
    sa.Column("points", sa.Integer, nullable=False),
)

holds = sa.Table(
    "holds",
    metadata,
    sa.Column("hold_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("points", sa.Integer, nullable=False),
    sa.Column("reward", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # held, captured, voided, lapsed
    sa.Column("settled_at", sa.DateTime(timezone=True)),
    sa.Column("partner_id", sa.Text),
    sa.Column("store_id", sa.Text),
    sa.Column("reward_id", sa.Text),
)

# The lots already warned of their expiry: a warning is given once per lot.
expiry_warnings = sa.Table(
    "expiry_warnings",
    metadata,
    sa.Column("lot_id", sa.Text, primary_key=True),
    sa.Column("warned_at", sa.DateTime(timezone=True), nullable=False),
)

# What a refund needs of the purchase it refunds.
purchases = sa.Table(
    "purchases",
    metadata,
    sa.Column("purchase_key", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("purchase_id", sa.Text, nullable=False),
    sa.Column("total", sa.Numeric(12, 2), nullable=False),
    sa.Column("points", sa.Integer, nullable=False),
    sa.Column("partner_id", sa.Text, nullable=False),
    # Points as tender: the redemption that paid for part of the purchase (migration 0007);
    # one purchase at most per redemption (migration 0009).
    sa.Column("redemption_id", sa.Text),
    sa.Index(
        "ux_purchases_redemption_id",
        "redemption_id",
        unique=True,
        postgresql_where=sa.text("redemption_id IS NOT NULL"),
    ),
)

# Every refund received, in the order it came; one before its purchase waits here for it.
refunds = sa.Table(
    "refunds",
    metadata,
    sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("refund_key", sa.Text, nullable=False, unique=True),
    sa.Column("purchase_key", sa.Text, nullable=False, index=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("refund_id", sa.Text, nullable=False),
    sa.Column("amount", sa.Numeric(12, 2), nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
)

# Staff adjustments: the ledger entry holds the points and reason; this, who made it.
adjustments = sa.Table(
    "adjustments",
    metadata,
    sa.Column("adjustment_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("points", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# Staff decisions on earnings the velocity guard held: released (a lot) or rejected; once.
held_decisions = sa.Table(
    "held_decisions",
    metadata,
    sa.Column("held_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("decision", sa.Text, nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
)

# The reward catalogue (migration 0008): `redeemed` counts the coupons issued, never above
# `stock` (none: unlimited); a retired reward issues no more.
rewards = sa.Table(
    "rewards",
    metadata,
    sa.Column("reward_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("points_cost", sa.Integer, nullable=False),
    sa.Column("value", sa.Numeric(12, 2)),
    sa.Column("partner_id", sa.Text),
    sa.Column("min_tier", sa.Text),
    sa.Column("stock", sa.Integer),
    sa.Column("redeemed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("per_customer_limit", sa.Integer),
    sa.Column("starts_at", sa.DateTime(timezone=True)),
    sa.Column("ends_at", sa.DateTime(timezone=True)),
    sa.Column("coupon_validity_days", sa.Integer, nullable=False, server_default="30"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("retired_at", sa.DateTime(timezone=True)),
)

# The single-use coupons a reward's redemptions issue (migration 0008); `code` normalised
# (upper case, no dashes); `redemption_id` the ledger entry that paid for it. A gift coupon
# (migration 0012) names the engagement grant that gave it (`grant_id`, one coupon each), costs
# 0 points and has the grant's id as `redemption_id`; `revoked_at` records its revocation.
coupons = sa.Table(
    "coupons",
    metadata,
    sa.Column("coupon_id", sa.Text, primary_key=True),
    sa.Column("code", sa.Text, nullable=False, unique=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("reward_id", sa.Text, sa.ForeignKey("rewards.reward_id"), nullable=False),
    sa.Column("redemption_id", sa.Text, nullable=False, unique=True),
    sa.Column("points", sa.Integer, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # issued, redeemed, expired, voided
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("redeemed_at", sa.DateTime(timezone=True)),
    sa.Column("partner_id", sa.Text),
    sa.Column("store_id", sa.Text),
    sa.Column("purchase_id", sa.Text),
    sa.Column("expired_at", sa.DateTime(timezone=True)),
    sa.Column("points_returned", sa.Integer),
    sa.Column("grant_id", sa.Text),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Index("ix_coupons_customer_reward", "customer_id", "reward_id"),
    sa.Index(
        "ux_coupons_grant_id",
        "grant_id",
        unique=True,
        postgresql_where=sa.text("grant_id IS NOT NULL"),
    ),
    sa.Index(
        "ix_coupons_issued_expires_at",
        "expires_at",
        "coupon_id",
        postgresql_where=sa.text("status = 'issued'"),
    ),
)

# Engagement's grants (migration 0011): each grant id points has seen, granted or revoked; a
# revocation of a grant never seen is kept too, so the grant arriving after it is not credited
# (`domain.engagement`). The key serialises a grant and its revocation applied concurrently.
engagement_grants = sa.Table(
    "engagement_grants",
    metadata,
    sa.Column("grant_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Column("refund_id", sa.Text),
)

# Targeting (migration 0013): insights' segment changes, the latest per member and segment.
segment_memberships = sa.Table(
    "segment_memberships",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("segment", sa.Text, primary_key=True),
    sa.Column("member", sa.Boolean, nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
)

# The personal offers made to members (a win-back offer), each a campaign of one member.
personal_offers = sa.Table(
    "personal_offers",
    metadata,
    sa.Column("offer_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("multiplier", sa.Numeric(5, 2)),
    sa.Column("bonus", sa.Integer),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_personal_offers_customer_ends_at", "customer_id", "ends_at"),
)
