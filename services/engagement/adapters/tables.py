"""The engagement database. The schema itself is made by the alembic migrations."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from shared.storage.db import define_inbox, define_outbox
from shared.web.idempotency import define_idempotency_keys

metadata = sa.MetaData()
inbox = define_inbox(metadata)
outbox = define_outbox(metadata)
idempotency_keys = define_idempotency_keys(metadata)


def _instant(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


# The members engagement knows (from their profile or a tier change): their tier targets rules.
members = sa.Table(
    "members",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("tier", sa.Text),  # null: no tier change seen yet (the entry tier)
    _instant("enrolled_at", nullable=True),
    # Who referred the member (the first referrer named), and the member's first purchase:
    # with both known, the referral counts for the referrer's challenges.
    sa.Column("referred_by", sa.Text),
    sa.Column("first_purchase_key", sa.Text),
    _instant("first_purchase_at", nullable=True),
    sa.Column("first_purchase_total", sa.Numeric(14, 2)),
    # The birthday (month and day, no year) and time zone of the member's latest profile
    # (`profile_version`), for the birthday-rewards job.
    sa.Column("birthday_month", sa.SmallInteger),
    sa.Column("birthday_day", sa.SmallInteger),
    sa.Column("time_zone", sa.Text),
    sa.Column("profile_version", sa.BigInteger),
    sa.Index(
        "ix_members_birthday",
        "birthday_month",
        "birthday_day",
        "time_zone",
        "customer_id",
        postgresql_where=sa.text("birthday_month IS NOT NULL"),
    ),
)

# The rules a program manager writes. A rule is ended, never deleted: members' cards keep it.
stamp_card_rules = sa.Table(
    "stamp_card_rules",
    metadata,
    sa.Column("card_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("stamps_required", sa.Integer, nullable=False),
    sa.Column("per", sa.Text, nullable=False),
    sa.Column("partner_id", sa.Text),
    sa.Column("store_id", sa.Text),
    sa.Column("category", sa.Text),
    sa.Column("min_amount", sa.Numeric(14, 2)),
    sa.Column("min_tier", sa.Text),
    # Targeting (migration 0005): exactly this tier, only members in this segment.
    sa.Column("tier", sa.Text),
    sa.Column("segment", sa.Text),
    sa.Column("reward_points", sa.Integer),
    sa.Column("reward_id", sa.Text),
    _instant("starts_at"),
    _instant("ends_at", nullable=True),
    _instant("created_at"),
    # Set when a program manager ended the rule: nothing read from then on counts for it,
    # even a purchase reported late from inside its window.
    _instant("ended_at", nullable=True),
)

challenge_rules = sa.Table(
    "challenge_rules",
    metadata,
    sa.Column("challenge_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("goal_kind", sa.Text, nullable=False),
    sa.Column("target", sa.Numeric(14, 2), nullable=False),
    sa.Column("goal_category", sa.Text),
    sa.Column("goal_partner_id", sa.Text),
    sa.Column("reward_points", sa.Integer),
    sa.Column("reward_id", sa.Text),
    sa.Column("badge", sa.Text),
    sa.Column("min_tier", sa.Text),
    sa.Column("tier", sa.Text),
    sa.Column("segment", sa.Text),
    _instant("starts_at"),
    _instant("ends_at"),
    _instant("created_at"),
    _instant("ended_at", nullable=True),
)

# A member's card of a rule: the stamps on the current card and how many were completed.
stamp_cards = sa.Table(
    "stamp_cards",
    metadata,
    sa.Column("card_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("stamps", sa.Integer, nullable=False),
    sa.Column("completed_count", sa.Integer, nullable=False),
    sa.Index("ix_stamp_cards_customer_id", "customer_id"),
)

# The stamps a purchase gave on a card (`purchase_key`: partner and purchase id), once per
# purchase whatever carried it, and what of it was refunded since.
stamp_purchases = sa.Table(
    "stamp_purchases",
    metadata,
    sa.Column("card_id", sa.Text, primary_key=True),
    sa.Column("purchase_key", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("given", sa.Integer, nullable=False),
    sa.Column("total", sa.Numeric(14, 2), nullable=False),
    sa.Column("refunded", sa.Numeric(14, 2), nullable=False),
    sa.Index("ix_stamp_purchases_purchase_key", "purchase_key"),
    sa.Index("ix_stamp_purchases_customer_id", "customer_id"),
)

# Each completed card: its reward's grant, and when a refund took it back.
stamp_completions = sa.Table(
    "stamp_completions",
    metadata,
    sa.Column("grant_id", sa.Text, primary_key=True),
    sa.Column("card_id", sa.Text, nullable=False),
    sa.Column("customer_id", sa.Text, nullable=False, index=True),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("purchase_key", sa.Text, nullable=False),
    _instant("completed_at"),
    _instant("revoked_at", nullable=True),
    # A completion is taken back once: one standing per number of a member's card.
    sa.Index(
        "ux_stamp_completions_standing",
        "card_id",
        "customer_id",
        "number",
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
    ),
)

# What counts towards a member's challenge: a purchase (`source_key`: partner and purchase id)
# or a referred member, with the part of it refunded since.
challenge_contributions = sa.Table(
    "challenge_contributions",
    metadata,
    sa.Column("challenge_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("source_key", sa.Text, primary_key=True),
    _instant("occurred_at"),
    sa.Column("amount", sa.Numeric(14, 2), nullable=False),
    sa.Column("total", sa.Numeric(14, 2), nullable=False),
    sa.Column("refunded", sa.Numeric(14, 2), nullable=False),
    sa.Column("partner_id", sa.Text),
    sa.Column("categories", ARRAY(sa.Text), nullable=False),
    sa.Index("ix_challenge_contributions_source_key", "source_key"),
    sa.Index("ix_challenge_contributions_customer_id", "customer_id"),
)

# A member's challenge once something counted: completed once, never undone.
challenge_progress = sa.Table(
    "challenge_progress",
    metadata,
    sa.Column("challenge_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, primary_key=True),
    _instant("completed_at", nullable=True),
    sa.Index("ix_challenge_progress_customer_id", "customer_id"),
)

badges = sa.Table(
    "badges",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("badge", sa.Text, primary_key=True),
    sa.Column("challenge_id", sa.Text, nullable=False),
    _instant("earned_at"),
)

# The refunds applied, once each whatever carried them (`refund_key`: partner and refund id).
refunds_seen = sa.Table(
    "refunds_seen",
    metadata,
    sa.Column("refund_key", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False, index=True),
)


# Birthdays -------------------------------------------------------------

# The birthday reward a program manager configured: one row, or none (stopped).
birthday_reward = sa.Table(
    "birthday_reward",
    metadata,
    sa.Column("id", sa.Boolean, primary_key=True),  # always true: one row at most
    sa.Column("reward_points", sa.Integer),
    sa.Column("reward_id", sa.Text),
    sa.Column("min_tier", sa.Text),
    _instant("updated_at"),
    sa.CheckConstraint("id", name="ck_birthday_reward_one_row"),
)

# Each member's birthday reward, once a year: its grant id is derived from member and year.
birthday_grants = sa.Table(
    "birthday_grants",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("grant_id", sa.Text, nullable=False, unique=True),
    _instant("granted_at"),
)

# Surprises ---------------------------------------------------------------

# A program manager's surprise rules: a chance per qualifying purchase, a reward, and
# optionally a daily budget (points a UTC day) and a per-member cooldown. Ended, never deleted.
surprise_rules = sa.Table(
    "surprise_rules",
    metadata,
    sa.Column("surprise_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("chance", sa.Numeric(10, 9), nullable=False),
    sa.Column("partner_id", sa.Text),
    sa.Column("store_id", sa.Text),
    sa.Column("category", sa.Text),
    sa.Column("min_tier", sa.Text),
    sa.Column("tier", sa.Text),
    sa.Column("segment", sa.Text),
    sa.Column("reward_points", sa.Integer),
    sa.Column("reward_id", sa.Text),
    sa.Column("daily_budget", sa.Integer),
    sa.Column("cooldown_days", sa.Integer),
    _instant("starts_at"),
    _instant("ends_at", nullable=True),
    _instant("created_at"),
    _instant("ended_at", nullable=True),
)

# Each surprise won: once per rule and purchase whatever carried it (`purchase_key`: partner
# and purchase id), with its grant, what of the purchase was refunded since, and when a whole
# refund took it back. The member's wins of a rule are their cooldown.
surprise_wins = sa.Table(
    "surprise_wins",
    metadata,
    sa.Column("surprise_id", sa.Text, primary_key=True),
    sa.Column("purchase_key", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("grant_id", sa.Text, nullable=False, unique=True),
    _instant("won_at"),
    sa.Column("total", sa.Numeric(14, 2), nullable=False),
    sa.Column("refunded", sa.Numeric(14, 2), nullable=False),
    _instant("revoked_at", nullable=True),
    sa.Index("ix_surprise_wins_customer_id", "customer_id"),
    sa.Index("ix_surprise_wins_purchase_key", "purchase_key"),
)

# The points each rule granted on each UTC day (of the purchases' occurred_at): its budget.
surprise_budgets = sa.Table(
    "surprise_budgets",
    metadata,
    sa.Column("surprise_id", sa.Text, primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("spent", sa.Integer, nullable=False),
)

# Feedback (migration 0004) ----------------------------------------------

# Each feedback a member gave (`feedback_key`: partner and feedback id), the comment kept only
# here and erased with the member; `nps` scores make the NPS report per partner and store.
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("feedback_key", sa.Text, primary_key=True),
    sa.Column("feedback_id", sa.Text, nullable=False),
    sa.Column("partner_id", sa.Text, nullable=False),
    sa.Column("store_id", sa.Text),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("purchase_key", sa.Text),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("score", sa.SmallInteger),
    sa.Column("comment", sa.Text),
    _instant("given_at"),
    sa.CheckConstraint("score BETWEEN 0 AND 10", name="ck_feedback_score_range"),
    sa.Index("ix_feedback_customer_id", "customer_id"),
    sa.Index("ix_feedback_nps", "partner_id", "store_id", "given_at"),
)

# The feedback reward granted, once per purchase (its grant id derived from the purchase key).
feedback_rewards = sa.Table(
    "feedback_rewards",
    metadata,
    sa.Column("purchase_key", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("feedback_key", sa.Text, nullable=False),
    sa.Column("grant_id", sa.Text, nullable=False, unique=True),
    _instant("granted_at"),
    sa.Index("ix_feedback_rewards_customer_id", "customer_id"),
)

# The program's feedback reward (`PUT /v1/feedback-reward`): one row, or none (no reward).
feedback_reward = sa.Table(
    "feedback_reward",
    metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("reward_points", sa.Integer),
    sa.Column("reward_id", sa.Text),
    sa.Column("kinds", ARRAY(sa.Text), nullable=False),
    _instant("updated_at"),
    sa.CheckConstraint("id = 1", name="ck_feedback_reward_single"),
)

# The members erased (a pseudonymous id, like ingest's row): feedback is on its own topic, so
# it may be read after the member's erasure; its comment must then never be stored. Segment
# events (their own topic too) of a member erased are not kept either.
feedback_erased_members = sa.Table(
    "feedback_erased_members",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    _instant("erased_at"),
)


# Segments (migration 0005) ----------------------------------------------

# The read model of insights' segment events: per member and segment, the newest change
# (`changed_at`, leaving first at the same instant) and whether the member is in. A row of a
# member who left stays, so an older "entered" read late changes nothing. Erased with the
# member. Rules targeted by a segment read it when engagement applies a purchase.
segment_memberships = sa.Table(
    "segment_memberships",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("segment", sa.Text, primary_key=True),
    sa.Column("member", sa.Boolean, nullable=False),
    _instant("changed_at"),
)
