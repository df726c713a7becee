"""Events as the services receive them, built one way for every test: each factory takes what
a test usually varies and defaults the rest. A test that needs another shape wraps these."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.messaging import events
from shared.messaging.events import CloudEvent, derived_event_id, new_event

PARTNER = "demo"


def _now() -> datetime:
    return datetime.now(UTC)


def ingest_event(
    payload: events.Payload,
    customer_id: str,
    at: datetime,
    partner_id: str,
    *,
    subject: str | None = None,
    traceparent: str | None = None,
) -> CloudEvent:
    """The envelope ingest puts round a payload: keyed by the customer unless `subject` says
    otherwise (a test that puts an event under another key), in the current trace unless
    `traceparent` is given."""
    return new_event(
        payload,
        source=f"ingest/{partner_id}",
        subject=subject or customer_id,
        time=at,
        traceparent=traceparent,
    )


def purchase(
    customer_id: str,
    total: str | Decimal = "10.00",
    *,
    at: datetime | None = None,
    occurred_at: datetime | None = None,
    purchase_id: str | None = None,
    partner_id: str = PARTNER,
    currency: str = "EUR",
    items: Sequence[events.PurchaseItem] | None = None,
    **fields: Any,
) -> CloudEvent:
    """A purchase.completed event; `at` is the event's time (default now), `occurred_at` the
    purchase's (default `at`)."""
    at = at or _now()
    payload = events.PurchaseCompleted(
        purchase_id=purchase_id or f"p-{uuid.uuid4()}",
        partner_id=partner_id,
        customer_id=customer_id,
        occurred_at=occurred_at or at,
        currency=currency,
        total=Decimal(total),
        items=None if items is None else list(items),
        **fields,
    )
    return ingest_event(payload, customer_id, at, partner_id)


def refund(
    customer_id: str,
    purchase_id: str,
    amount: str | Decimal,
    *,
    refund_id: str | None = None,
    at: datetime | None = None,
    occurred_at: datetime | None = None,
    partner_id: str = PARTNER,
) -> CloudEvent:
    at = at or _now()
    payload = events.PurchaseRefunded(
        refund_id=refund_id or f"r-{uuid.uuid4()}",
        purchase_id=purchase_id,
        partner_id=partner_id,
        customer_id=customer_id,
        occurred_at=occurred_at or at,
        amount=Decimal(amount),
    )
    return ingest_event(payload, customer_id, at, partner_id)


def enrolment(
    customer_id: str,
    *,
    at: datetime | None = None,
    enrolled_at: datetime | None = None,
    partner_id: str = PARTNER,
    subject: str | None = None,
    traceparent: str | None = None,
    **profile: Any,
) -> CloudEvent:
    """A customer.enrolled event; `profile` sets any other field (email, locale, consent...)."""
    return _profile(
        events.CustomerEnrolled,
        customer_id,
        at,
        enrolled_at,
        partner_id,
        subject,
        traceparent,
        profile,
    )


def profile_update(
    customer_id: str,
    *,
    at: datetime | None = None,
    enrolled_at: datetime | None = None,
    partner_id: str = PARTNER,
    subject: str | None = None,
    traceparent: str | None = None,
    **profile: Any,
) -> CloudEvent:
    """A customer.updated event (the whole latest profile, as ingest publishes it)."""
    return _profile(
        events.CustomerUpdated,
        customer_id,
        at,
        enrolled_at,
        partner_id,
        subject,
        traceparent,
        profile,
    )


def _profile(
    kind: type[events.CustomerProfile],
    customer_id: str,
    at: datetime | None,
    enrolled_at: datetime | None,
    partner_id: str,
    subject: str | None,
    traceparent: str | None,
    profile: dict[str, Any],
) -> CloudEvent:
    at = at or _now()
    payload = kind(
        customer_id=customer_id,
        partner_id=partner_id,
        enrolled_at=enrolled_at or at,
        **profile,
    )
    return ingest_event(
        payload, customer_id, at, partner_id, subject=subject, traceparent=traceparent
    )


def erasure(
    customer_id: str, *, at: datetime | None = None, partner_id: str = PARTNER
) -> CloudEvent:
    """A customer.erased event."""
    payload = events.CustomerErased(customer_id=customer_id)
    return ingest_event(payload, customer_id, at or _now(), partner_id)


def points_import(
    customer_id: str,
    lots: Sequence[tuple[int, datetime | None]] = (),
    *,
    at: datetime | None = None,
    imported_at: datetime | None = None,
    partner_id: str = PARTNER,
    tier: events.TierName | None = None,
    tier_since: datetime | None = None,
    event_id: str | None = None,
) -> CloudEvent:
    """A points.imported event (issue 23) as ingest publishes it after an imported member's
    enrolment: `lots` as (points, expires_at or None), its id derived from the customer (one
    per member) unless `event_id` says otherwise. The enrolment itself is `enrolment(...,
    imported=True, welcome=...)`."""
    at = at or _now()
    payload = events.PointsImported(
        customer_id=customer_id,
        partner_id=partner_id,
        lots=[events.ImportedLot(points=points, expires_at=expires) for points, expires in lots],
        tier=tier,
        tier_since=tier_since,
        imported_at=imported_at or at,
    )
    return new_event(
        payload,
        source=f"ingest/{partner_id}",
        subject=customer_id,
        time=at,
        event_id=event_id or derived_event_id(f"customer/{customer_id}", "points-imported"),
    )


ENGAGEMENT_SOURCE = "engagement"  # urn:fedelta:engagement, the owner of its topic


def engagement_rewarded(
    customer_id: str,
    *,
    grant_id: str | None = None,
    points: int | None = 50,
    reward_id: str | None = None,
    reason: events.EngagementReason = "stamp_card",
    rule_id: str = "card-1",
    name: str = "Coffee card",
    purchase_id: str | None = None,
    at: datetime | None = None,
    granted_at: datetime | None = None,
    event_id: str | None = None,
) -> CloudEvent:
    """A fedelta.engagement.rewarded event as engagement publishes it: `points` (default 50)
    or, with `reward_id` and `points=None`, a catalogue's reward."""
    at = at or _now()
    payload = events.EngagementRewarded(
        grant_id=grant_id or f"g-{uuid.uuid4()}",
        customer_id=customer_id,
        reason=reason,
        rule_id=rule_id,
        name=name,
        points=points,
        reward_id=reward_id,
        purchase_id=purchase_id,
        granted_at=granted_at or at,
    )
    return new_event(
        payload, source=ENGAGEMENT_SOURCE, subject=customer_id, time=at, event_id=event_id
    )


def engagement_reward_revoked(
    customer_id: str,
    grant_id: str,
    *,
    refund_id: str | None = None,
    at: datetime | None = None,
    revoked_at: datetime | None = None,
    event_id: str | None = None,
) -> CloudEvent:
    """A fedelta.engagement.reward_revoked event as engagement publishes it."""
    at = at or _now()
    payload = events.EngagementRewardRevoked(
        grant_id=grant_id,
        customer_id=customer_id,
        refund_id=refund_id,
        revoked_at=revoked_at or at,
    )
    return new_event(
        payload, source=ENGAGEMENT_SOURCE, subject=customer_id, time=at, event_id=event_id
    )


# -- engagement's messages to the member (notifications tells of them) ------------------------


def stamp_card_completed(
    customer_id: str,
    *,
    card_id: str = "card-1",
    name: str = "Coffee card",
    stamps_required: int = 10,
    completed_count: int = 1,
    grant_id: str | None = None,
    purchase_id: str | None = None,
    at: datetime | None = None,
    event_id: str | None = None,
) -> CloudEvent:
    """A fedelta.stampcard.completed event as engagement publishes it: the member's
    `completed_count`th full card of `card_id`."""
    at = at or _now()
    payload = events.StampCardCompleted(
        customer_id=customer_id,
        card_id=card_id,
        name=name,
        stamps_required=stamps_required,
        completed_count=completed_count,
        grant_id=grant_id or f"g-{uuid.uuid4()}",
        purchase_id=purchase_id or f"p-{uuid.uuid4()}",
        completed_at=at,
    )
    return new_event(
        payload, source=ENGAGEMENT_SOURCE, subject=customer_id, time=at, event_id=event_id
    )


def challenge_completed(
    customer_id: str,
    *,
    challenge_id: str = "challenge-1",
    name: str = "Five visits in May",
    badge: str | None = None,
    grant_id: str | None = None,
    at: datetime | None = None,
    event_id: str | None = None,
) -> CloudEvent:
    """A fedelta.challenge.completed event as engagement publishes it (`grant_id` None: a
    challenge without a reward)."""
    at = at or _now()
    payload = events.ChallengeCompleted(
        customer_id=customer_id,
        challenge_id=challenge_id,
        name=name,
        badge=badge,
        grant_id=grant_id,
        completed_at=at,
    )
    return new_event(
        payload, source=ENGAGEMENT_SOURCE, subject=customer_id, time=at, event_id=event_id
    )


def badge_earned(
    customer_id: str,
    *,
    badge: str = "Explorer",
    challenge_id: str = "challenge-1",
    at: datetime | None = None,
    event_id: str | None = None,
) -> CloudEvent:
    """A fedelta.badge.earned event as engagement publishes it."""
    at = at or _now()
    payload = events.BadgeEarned(
        customer_id=customer_id, badge=badge, challenge_id=challenge_id, earned_at=at
    )
    return new_event(
        payload, source=ENGAGEMENT_SOURCE, subject=customer_id, time=at, event_id=event_id
    )


def feedback(
    customer_id: str,
    kind: str = "nps",
    score: int | None = 9,
    *,
    feedback_id: str | None = None,
    purchase_id: str | None = None,
    partner_id: str = PARTNER,
    store_id: str | None = None,
    comment: str | None = None,
    at: datetime | None = None,
) -> CloudEvent:
    """A feedback.received event, as ingest publishes it."""
    at = at or _now()
    payload = events.FeedbackReceived(
        feedback_id=feedback_id or f"f-{uuid.uuid4()}",
        partner_id=partner_id,
        store_id=store_id,
        customer_id=customer_id,
        purchase_id=purchase_id,
        kind=kind,
        score=score,
        comment=comment,
        given_at=at,
    )
    return ingest_event(payload, customer_id, at, partner_id)


POINTS_SOURCE = "points"
TIERS_SOURCE = "tiers"


def points_earned(
    customer_id: str,
    points: int = 10,
    *,
    purchase_id: str | None = None,
    rule_ids: Sequence[str] = (),
    at: datetime | None = None,
) -> CloudEvent:
    """A fedelta.points.earned event as points publishes it (`rule_ids` names a campaign as
    `campaign:<id>`)."""
    at = at or _now()
    payload = events.PointsEarned(
        customer_id=customer_id,
        points=points,
        purchase_id=purchase_id,
        reason="purchase" if purchase_id else "bonus",
        rule_ids=list(rule_ids),
        available_at=at,
        expires_at=at + timedelta(days=365),
    )
    return new_event(payload, source=POINTS_SOURCE, subject=customer_id, time=at)


def points_redeemed(
    customer_id: str, points: int = 10, *, at: datetime | None = None
) -> CloudEvent:
    at = at or _now()
    payload = events.PointsRedeemed(
        customer_id=customer_id,
        points=points,
        redemption_id=f"red-{uuid.uuid4()}",
        reward="A reward",
    )
    return new_event(payload, source=POINTS_SOURCE, subject=customer_id, time=at)


def points_expired(customer_id: str, points: int = 10, *, at: datetime | None = None) -> CloudEvent:
    at = at or _now()
    payload = events.PointsExpired(customer_id=customer_id, points=points)
    return new_event(payload, source=POINTS_SOURCE, subject=customer_id, time=at)


def tier_change(
    customer_id: str,
    to_tier: events.TierName = "silver",
    *,
    from_tier: events.TierName = "bronze",
    at: datetime | None = None,
) -> CloudEvent:
    """A fedelta.tier.changed event as tiers publishes it."""
    at = at or _now()
    payload = events.TierChanged(
        customer_id=customer_id,
        from_tier=from_tier,
        to_tier=to_tier,
        direction="up" if events_order(to_tier) > events_order(from_tier) else "down",
        reason="spend",
        effective_at=at,
        review_at=at + timedelta(days=365),
    )
    return new_event(payload, source=TIERS_SOURCE, subject=customer_id, time=at)


def events_order(tier: str) -> int:
    return ("bronze", "silver", "gold", "platinum").index(tier)
