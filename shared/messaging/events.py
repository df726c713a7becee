"""The event contract: the CloudEvents 1.0 envelope and every payload model of the product.

Money is Decimal (a JSON string on the wire), every instant aware UTC. A JSON Schema and an
AsyncAPI document are generated from these models (`python -m shared.messaging.schema`).
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import os
import re
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)

from shared import bounds
from shared.messaging import topics
from shared.observability.context import CURRENT_TRACEPARENT


def _to_utc(instant: datetime) -> datetime:
    try:
        return instant.astimezone(UTC)
    except OverflowError:
        # A ValueError is a validation failure (dead-lettered); an OverflowError would crash.
        raise ValueError("the date-time cannot be converted to UTC") from None


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
# A decimal amount that never becomes a float: validated from strings or numbers,
# written as a string so no JSON parser on the way rounds it.
Money = Annotated[
    Decimal,
    Field(max_digits=14, decimal_places=2),
    PlainSerializer(lambda amount: str(amount), return_type=str, when_used="json"),
]
# The payloads below carry the bounds of `shared.bounds`, the same as ingest's edge: an event
# outside them (one written before they existed) fails validation and is dead-lettered by
# the consumer instead of breaking a customer's balance or tier further down.
PositiveMoney = bounds.Amount


class Payload(BaseModel):
    # Strict at the edge (ingest's own request models refuse unknown fields), tolerant inside:
    # a consumer passes over fields a newer producer added, so a rolling upgrade loses nothing.
    model_config = ConfigDict(frozen=True, extra="ignore")


P = TypeVar("P", bound=Payload)


TierName = Literal["bronze", "silver", "gold", "platinum"]


class Consent(Payload):
    email: bool = False
    sms: bool = False


class CustomerProfile(Payload):
    customer_id: bounds.Identifier
    partner_id: bounds.Identifier
    enrolled_at: bounds.Instant
    locale: bounds.Label = "en"
    time_zone: bounds.Label = "UTC"
    email: bounds.Email | None = None
    phone: bounds.Label | None = None
    consent: Consent = Consent()
    referred_by: bounds.Identifier | None = None
    # Day and month matter (a birthday treat); bounded at ingest's edge (issue 23).
    birthday: date | None = None
    # The profile's sequence number at ingest (1 at enrolment, +1 per change, assigned under
    # the row lock); consumers keep the profile with the highest. None only in events from
    # before versions existed.
    version: int | None = Field(default=None, ge=1, le=2**62)


class CustomerEnrolled(CustomerProfile):
    # A member brought over from another program (`fedelta import members`, issue 23): the
    # welcome bonus and the welcome message only when the import asked for them.
    imported: bool = False
    welcome: bool = True


class CustomerUpdated(CustomerProfile):
    pass


class CustomerErased(Payload):
    customer_id: bounds.Identifier


class PurchaseItem(Payload):
    sku: bounds.Label
    category: bounds.Label | None = None
    quantity: bounds.Quantity
    unit_price: bounds.UnitPrice


class PurchaseCompleted(Payload):
    purchase_id: bounds.Identifier
    partner_id: bounds.Identifier
    store_id: bounds.Identifier | None = None
    customer_id: bounds.Identifier
    occurred_at: bounds.Instant
    currency: str = Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")
    total: bounds.Amount
    items: Annotated[list[PurchaseItem], Field(max_length=bounds.MAX_ITEMS)] | None = None
    # Points as tender: the redemption (made at the till before the payment) that paid for
    # part of this purchase; its refund gives those points back in proportion.
    redemption_id: bounds.Identifier | None = None


class ImportedLot(Payload):
    points: Annotated[int, Field(ge=1, le=bounds.MAX_POINTS)]
    # None: the program's validity from the import on.
    expires_at: bounds.Instant | None = None


class PointsImported(Payload):
    """An imported member's opening balance (lots with their own expiries) and opening tier,
    as the program they come from held them. Published by ingest on the purchases topic, key
    = the customer, after their enrolment; points makes the lots, tiers the tier (reason
    `import`). One per member: its id is derived from the member's."""

    customer_id: bounds.Identifier
    partner_id: bounds.Identifier
    lots: Annotated[list[ImportedLot], Field(max_length=100)] = []
    tier: TierName | None = None
    tier_since: bounds.Instant | None = None
    imported_at: bounds.Instant


class PurchaseRefunded(Payload):
    refund_id: bounds.Identifier
    purchase_id: bounds.Identifier
    partner_id: bounds.Identifier
    customer_id: bounds.Identifier
    occurred_at: bounds.Instant
    amount: bounds.Amount


class PointsEarned(Payload):
    customer_id: bounds.Identifier
    points: bounds.Points
    purchase_id: bounds.Identifier | None = None
    reason: bounds.Text
    rule_ids: list[bounds.Label] = []
    available_at: bounds.Instant
    expires_at: bounds.Instant


class PointsRedeemed(Payload):
    customer_id: bounds.Identifier
    points: bounds.Points
    redemption_id: bounds.Identifier
    reward: bounds.Label
    # A redemption of the catalogue's reward (none for a free-form one), and the partner
    # (and store) whose till made it: none for an administrator's redemption.
    reward_id: bounds.Identifier | None = None
    partner_id: bounds.Identifier | None = None
    store_id: bounds.Identifier | None = None


class PointsReversed(Payload):
    customer_id: bounds.Identifier
    points: bounds.Points
    refund_id: bounds.Identifier


class PointsExpiring(Payload):
    customer_id: bounds.Identifier
    points: bounds.Points
    expires_at: bounds.Instant


class PointsExpired(Payload):
    customer_id: bounds.Identifier
    points: bounds.Points


class PointsAdjusted(Payload):
    customer_id: bounds.Identifier
    points: bounds.Points
    reason: bounds.Text
    actor: bounds.Label


class CouponIssued(Payload):
    """A reward redeemed, or given by engagement: its single-use coupon exists. The code never
    travels in an event (whoever holds it can use it): the member gets it in the message
    notifications sends, which reads it from points by the coupon's id."""

    coupon_id: bounds.Identifier
    customer_id: bounds.Identifier
    # A gift's is its grant id: no points were spent on it.
    redemption_id: bounds.Identifier
    reward_id: bounds.Identifier
    reward: bounds.Label
    points: bounds.Points  # 0 for a gift
    # The partner that honours (and funds) the reward: none for any partner.
    partner_id: bounds.Identifier | None = None
    expires_at: bounds.Instant
    # A gift: the engagement grant (`fedelta.engagement.rewarded`) that gave the coupon.
    grant_id: bounds.Identifier | None = None


class CouponRedeemed(Payload):
    coupon_id: bounds.Identifier
    customer_id: bounds.Identifier
    redemption_id: bounds.Identifier
    reward_id: bounds.Identifier
    # The partner and store whose till took the coupon (none: an administrator took a coupon
    # of a reward any partner honours).
    partner_id: bounds.Identifier | None = None
    store_id: bounds.Identifier | None = None
    purchase_id: bounds.Identifier | None = None
    redeemed_at: bounds.Instant


class CouponExpired(Payload):
    coupon_id: bounds.Identifier
    customer_id: bounds.Identifier
    redemption_id: bounds.Identifier
    reward_id: bounds.Identifier
    # What the program gave back (`coupon_expiry: refund_points`), 0 when forfeited.
    points_returned: bounds.Points
    expired_at: bounds.Instant


class TierChanged(Payload):
    customer_id: bounds.Identifier
    from_tier: TierName
    to_tier: TierName
    direction: Literal["up", "down"]
    reason: bounds.Text
    effective_at: bounds.Instant
    review_at: bounds.Instant
    # Progress to the tier above after the change, per route (issue 25), set only by a
    # program that has tiers reached by referrals or visits: what is still missing by each
    # route the next tier has (none: not a route of it), and whether any or all must be met.
    next_tier: TierName | None = None
    amount_to_next_tier: Money | None = None
    referrals_to_next_tier: int | None = Field(default=None, ge=0, le=1_000_000)
    visits_to_next_tier: int | None = Field(default=None, ge=0, le=1_000_000)
    next_tier_match: Literal["any", "all"] | None = None


class TierDowngradeWarning(Payload):
    customer_id: bounds.Identifier
    tier: TierName
    would_become: TierName
    review_at: bounds.Instant
    amount_to_keep_tier: Money
    # What keeps the tier per route (issue 25), set only by a program with tiers reached by
    # referrals or visits: `keep_by_spend` false when the tier has no spend route (then
    # `amount_to_keep_tier` is 0 and means nothing), the other routes' gaps (none: not a
    # route of the tier), and whether any or all must be met.
    keep_by_spend: bool | None = None
    referrals_to_keep_tier: int | None = Field(default=None, ge=0, le=1_000_000)
    visits_to_keep_tier: int | None = Field(default=None, ge=0, le=1_000_000)
    keep_match: Literal["any", "all"] | None = None


class NotificationOutcome(Payload):
    notification_id: bounds.Identifier
    customer_id: bounds.Identifier
    channel: Literal["email", "sms", "webhook"]
    template: bounds.Label
    attempt: int = Field(ge=0, le=bounds.MAX_POINTS)


class NotificationDelivered(NotificationOutcome):
    pass


class NotificationFailed(NotificationOutcome):
    # Written by notifications itself (an error class), not from input: kept unconstrained
    # so that an unusual error never stops the outcome from being recorded.
    error: str | None = None


EngagementReason = Literal["stamp_card", "challenge", "surprise", "birthday", "feedback"]


class EngagementRewarded(Payload):
    """A reward engagement grants (a full stamp card, a challenge met, a surprise, a birthday,
    feedback given): points makes it an earning of `points`, or a coupon of the catalogue's
    `reward_id`, once per `grant_id`, and takes it back on `fedelta.engagement.reward_revoked`."""

    grant_id: bounds.Identifier
    customer_id: bounds.Identifier
    reason: EngagementReason
    rule_id: bounds.Identifier  # the stamp card, challenge or surprise that granted it
    name: bounds.Label  # the rule's name, for the ledger and the member's message
    points: Annotated[int, Field(ge=1, le=bounds.MAX_POINTS)] | None = None
    reward_id: bounds.Identifier | None = None
    purchase_id: bounds.Identifier | None = None  # the purchase that earned it, if one did
    granted_at: bounds.Instant

    @model_validator(mode="after")
    def _one_reward(self) -> EngagementRewarded:
        if (self.points is None) == (self.reward_id is None):
            raise ValueError("a reward is either points or a reward_id")
        return self


class EngagementRewardRevoked(Payload):
    """A granted reward taken back: the purchase that earned it was refunded."""

    grant_id: bounds.Identifier
    customer_id: bounds.Identifier
    refund_id: bounds.Identifier | None = None
    revoked_at: bounds.Instant


class StampCardCompleted(Payload):
    customer_id: bounds.Identifier
    card_id: bounds.Identifier
    name: bounds.Label
    stamps_required: int = Field(ge=1, le=1_000)
    completed_count: int = Field(ge=1, le=bounds.MAX_POINTS)  # this card's, the member's nth
    grant_id: bounds.Identifier  # the reward's `EngagementRewarded`
    purchase_id: bounds.Identifier
    completed_at: bounds.Instant
    # The reward, as its `EngagementRewarded` grants it: points or a catalogue reward.
    points: Annotated[int, Field(ge=1, le=bounds.MAX_POINTS)] | None = None
    reward_id: bounds.Identifier | None = None


class ChallengeCompleted(Payload):
    customer_id: bounds.Identifier
    challenge_id: bounds.Identifier
    name: bounds.Label
    badge: bounds.Label | None = None
    grant_id: bounds.Identifier | None = None  # the reward's `EngagementRewarded`, if any
    completed_at: bounds.Instant
    points: Annotated[int, Field(ge=1, le=bounds.MAX_POINTS)] | None = None
    reward_id: bounds.Identifier | None = None


class BadgeEarned(Payload):
    customer_id: bounds.Identifier
    badge: bounds.Label
    challenge_id: bounds.Identifier
    earned_at: bounds.Instant


FeedbackKind = Literal["review", "survey", "nps"]
MAX_FEEDBACK_COMMENT_LENGTH = 1_000
FeedbackComment = Annotated[
    str,
    Field(min_length=1, max_length=MAX_FEEDBACK_COMMENT_LENGTH, pattern=bounds.PRINTABLE_PATTERN),
]
# The scores each kind allows (inclusive); an `nps` feedback must have one.
FEEDBACK_SCORES: dict[str, tuple[int, int]] = {"nps": (0, 10), "review": (1, 5), "survey": (0, 10)}


class FeedbackReceived(Payload):
    """A member's feedback, given at a partner's POS or app. Published by
    ingest on the compacted feedback topic, keyed by `feedback_key(partner_id, feedback_id)`:
    the comment is personal data, and an erasure writes a tombstone of each of the member's
    feedback keys (docs/operations.md, *Erasure on Kafka*). Never logged."""

    feedback_id: bounds.Identifier  # the partner's own id, unique per partner
    partner_id: bounds.Identifier
    store_id: bounds.Identifier | None = None
    customer_id: bounds.Identifier
    purchase_id: bounds.Identifier | None = None  # a purchase this partner reported
    kind: FeedbackKind
    score: int | None = Field(default=None, ge=0, le=10)
    comment: FeedbackComment | None = None
    given_at: bounds.Instant

    @model_validator(mode="after")
    def _score_fits_kind(self) -> FeedbackReceived:
        low, high = FEEDBACK_SCORES[self.kind]
        if self.score is None and self.kind == "nps":
            raise ValueError("an nps feedback has a score")
        if self.score is not None and not low <= self.score <= high:
            raise ValueError(f"a {self.kind} score is {low} to {high}")
        return self


# A segment of insights (issue 21): `loyalty:<type>`, `lifecycle:<stage>`, `tier:<tier>` built
# in, or a custom segment's own name (lower case, digits and dashes: never a colon).
SEGMENT_NAME_PATTERN = r"^(?:(?:loyalty|lifecycle|tier):)?[a-z0-9][a-z0-9_-]{0,62}$"
SegmentName = Annotated[str, Field(min_length=1, max_length=72, pattern=SEGMENT_NAME_PATTERN)]


class SegmentMembershipChanged(Payload):
    """A member entered or left a segment (published by insights on the segments topic, key =
    the member). `changed_at` is the instant of the evaluation that found the change: a read
    model keeps, per member and segment, the event with the latest and ignores older ones."""

    customer_id: bounds.Identifier
    segment: SegmentName
    changed_at: bounds.Instant
    # Why the member is in it (an entry only): the rule's reasons, for the console and logs.
    reasons: Annotated[list[bounds.Text], Field(max_length=10)] = []


class SegmentEntered(SegmentMembershipChanged):
    pass


class SegmentLeft(SegmentMembershipChanged):
    pass


class PointsOfferGranted(Payload):
    """A personal offer points made for one member: a campaign of theirs alone (a win-back
    incentive when they enter `lifecycle:lapsed`), applied to their purchases in [starts_at,
    ends_at); notifications tells them, in the win-back message."""

    offer_id: bounds.Identifier  # the personal campaign's id
    customer_id: bounds.Identifier
    reason: Literal["win_back"]
    name: bounds.Label
    multiplier: Annotated[Decimal, Field(gt=0, le=100, max_digits=6, decimal_places=2)] | None = (
        None
    )
    bonus: Annotated[int, Field(ge=1, le=bounds.MAX_POINTS)] | None = None
    starts_at: bounds.Instant
    ends_at: bounds.Instant

    @model_validator(mode="after")
    def _gives_something(self) -> PointsOfferGranted:
        if self.multiplier is None and self.bonus is None:
            raise ValueError("an offer has a multiplier, a bonus or both")
        if self.starts_at >= self.ends_at:
            raise ValueError("starts_at must be before ends_at")
        return self


class PartnerProvisioned(Payload):
    """A partner ingest has provisioned (onboarded over its admin API or by the command line):
    published on the compacted partners topic, keyed by the partner's id. Every consumer of
    ingest's topics keeps the set of partners from it and refuses an event naming a partner
    that is not in it (shared.messaging.partners). A partner is never withdrawn from the set:
    a revoked partner's earlier events stay valid."""

    partner_id: bounds.Identifier
    provisioned_at: bounds.Instant


def feedback_key(partner_id: str, feedback_id: str) -> str:
    """A feedback's id across partners, and its record's key on the feedback topic."""
    return f"{partner_id}:{feedback_id}"


CUSTOMER_ENROLLED = "fedelta.customer.enrolled.v1"
CUSTOMER_UPDATED = "fedelta.customer.updated.v1"
CUSTOMER_ERASED = "fedelta.customer.erased.v1"
PURCHASE_COMPLETED = "fedelta.purchase.completed.v1"
PURCHASE_REFUNDED = "fedelta.purchase.refunded.v1"
POINTS_IMPORTED = "fedelta.points.imported.v1"
POINTS_EARNED = "fedelta.points.earned.v1"
POINTS_REDEEMED = "fedelta.points.redeemed.v1"
POINTS_REVERSED = "fedelta.points.reversed.v1"
POINTS_EXPIRING = "fedelta.points.expiring.v1"
POINTS_EXPIRED = "fedelta.points.expired.v1"
POINTS_ADJUSTED = "fedelta.points.adjusted.v1"
COUPON_ISSUED = "fedelta.coupon.issued.v1"
COUPON_REDEEMED = "fedelta.coupon.redeemed.v1"
COUPON_EXPIRED = "fedelta.coupon.expired.v1"
TIER_CHANGED = "fedelta.tier.changed.v1"
TIER_DOWNGRADE_WARNING = "fedelta.tier.downgrade_warning.v1"
NOTIFICATION_DELIVERED = "fedelta.notification.delivered.v1"
NOTIFICATION_FAILED = "fedelta.notification.failed.v1"
ENGAGEMENT_REWARDED = "fedelta.engagement.rewarded.v1"
ENGAGEMENT_REWARD_REVOKED = "fedelta.engagement.reward_revoked.v1"
STAMP_CARD_COMPLETED = "fedelta.stampcard.completed.v1"
CHALLENGE_COMPLETED = "fedelta.challenge.completed.v1"
BADGE_EARNED = "fedelta.badge.earned.v1"
FEEDBACK_RECEIVED = "fedelta.feedback.received.v1"
SEGMENT_ENTERED = "fedelta.segment.entered.v1"
SEGMENT_LEFT = "fedelta.segment.left.v1"
POINTS_OFFER_GRANTED = "fedelta.points.offer_granted.v1"
PARTNER_PROVISIONED = "fedelta.partner.provisioned.v1"


@dataclass(frozen=True)
class EventKind:
    event_type: str
    topic: str
    payload: type[Payload]


EVENT_KINDS: dict[str, EventKind] = {
    kind.event_type: kind
    for kind in (
        EventKind(event_type=CUSTOMER_ENROLLED, topic=topics.CUSTOMERS, payload=CustomerEnrolled),
        EventKind(event_type=CUSTOMER_UPDATED, topic=topics.CUSTOMERS, payload=CustomerUpdated),
        EventKind(event_type=CUSTOMER_ERASED, topic=topics.CUSTOMERS, payload=CustomerErased),
        EventKind(event_type=PURCHASE_COMPLETED, topic=topics.PURCHASES, payload=PurchaseCompleted),
        EventKind(event_type=PURCHASE_REFUNDED, topic=topics.PURCHASES, payload=PurchaseRefunded),
        EventKind(event_type=POINTS_IMPORTED, topic=topics.PURCHASES, payload=PointsImported),
        EventKind(event_type=POINTS_EARNED, topic=topics.POINTS, payload=PointsEarned),
        EventKind(event_type=POINTS_REDEEMED, topic=topics.POINTS, payload=PointsRedeemed),
        EventKind(event_type=POINTS_REVERSED, topic=topics.POINTS, payload=PointsReversed),
        EventKind(event_type=POINTS_EXPIRING, topic=topics.POINTS, payload=PointsExpiring),
        EventKind(event_type=POINTS_EXPIRED, topic=topics.POINTS, payload=PointsExpired),
        EventKind(event_type=POINTS_ADJUSTED, topic=topics.POINTS, payload=PointsAdjusted),
        EventKind(event_type=COUPON_ISSUED, topic=topics.POINTS, payload=CouponIssued),
        EventKind(event_type=COUPON_REDEEMED, topic=topics.POINTS, payload=CouponRedeemed),
        EventKind(event_type=COUPON_EXPIRED, topic=topics.POINTS, payload=CouponExpired),
        EventKind(event_type=TIER_CHANGED, topic=topics.TIERS, payload=TierChanged),
        EventKind(
            event_type=TIER_DOWNGRADE_WARNING, topic=topics.TIERS, payload=TierDowngradeWarning
        ),
        EventKind(
            event_type=NOTIFICATION_DELIVERED,
            topic=topics.NOTIFICATIONS,
            payload=NotificationDelivered,
        ),
        EventKind(
            event_type=NOTIFICATION_FAILED, topic=topics.NOTIFICATIONS, payload=NotificationFailed
        ),
        EventKind(
            event_type=ENGAGEMENT_REWARDED, topic=topics.ENGAGEMENT, payload=EngagementRewarded
        ),
        EventKind(
            event_type=ENGAGEMENT_REWARD_REVOKED,
            topic=topics.ENGAGEMENT,
            payload=EngagementRewardRevoked,
        ),
        EventKind(
            event_type=STAMP_CARD_COMPLETED, topic=topics.ENGAGEMENT, payload=StampCardCompleted
        ),
        EventKind(
            event_type=CHALLENGE_COMPLETED, topic=topics.ENGAGEMENT, payload=ChallengeCompleted
        ),
        EventKind(event_type=BADGE_EARNED, topic=topics.ENGAGEMENT, payload=BadgeEarned),
        EventKind(event_type=FEEDBACK_RECEIVED, topic=topics.FEEDBACK, payload=FeedbackReceived),
        EventKind(event_type=SEGMENT_ENTERED, topic=topics.SEGMENTS, payload=SegmentEntered),
        EventKind(event_type=SEGMENT_LEFT, topic=topics.SEGMENTS, payload=SegmentLeft),
        EventKind(event_type=POINTS_OFFER_GRANTED, topic=topics.POINTS, payload=PointsOfferGranted),
        EventKind(
            event_type=PARTNER_PROVISIONED, topic=topics.PARTNERS, payload=PartnerProvisioned
        ),
    )
}
_TYPE_OF_PAYLOAD = {kind.payload: kind.event_type for kind in EVENT_KINDS.values()}


class UnknownEventType(ValueError):
    pass


# CloudEvents recommends an absolute URI for `source`. Services name themselves ("points",
# "ingest/partner/<id>") and `new_event` turns the name into one under this base, so the
# scheme is decided here once; an operator running several Fedelta installations that feed
# one consumer sets a base of their own (e.g. `urn:fedelta:eu-1:`).
SOURCE_BASE = os.environ.get("FEDELTA_EVENT_SOURCE_BASE", "urn:fedelta:")
# Where each type's JSON Schema is published (docs/events/<type>.schema.json, the `$id` of
# that file): every event names it in `dataschema`.
SCHEMA_BASE = os.environ.get("FEDELTA_EVENT_SCHEMA_BASE", "https://fedelta.dev/schemas/events/")
_ABSOLUTE_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
# The content type of a record's value and the Kafka binding's `content-type` header: the
# header tells a CloudEvents SDK that the record is in structured mode.
CLOUDEVENTS_JSON = "application/cloudevents+json; charset=UTF-8"


@functools.lru_cache(maxsize=4096)
def source_uri(name: str) -> str:
    """`points` -> `urn:fedelta:points`, `ingest/partner/p1` -> `urn:fedelta:ingest:partner:p1`;
    an absolute URI is kept as it is."""
    if _ABSOLUTE_URI.match(name):
        return name
    return SOURCE_BASE + name.replace("/", ":")


def schema_uri(event_type: str) -> str:
    """The published JSON Schema of an event type, named by every event's `dataschema`."""
    return f"{SCHEMA_BASE}{event_type}.schema.json"


def _omitted_when_none(value: object) -> bool:
    return value is None


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 document in structured mode; `data` is checked against its type."""

    model_config = ConfigDict(frozen=True, extra="allow")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str
    subject: str = Field(min_length=1)
    time: UtcDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    # Optional in the model so that events written before it existed still parse; every event
    # made by `new_event` carries it.
    dataschema: str | None = Field(default=None, min_length=1, exclude_if=_omitted_when_none)
    # The CloudEvents distributed-tracing extension (W3C Trace Context), left out of the JSON
    # when there is no trace to continue.
    traceparent: str | None = Field(default=None, min_length=1, exclude_if=_omitted_when_none)
    tracestate: str | None = Field(default=None, exclude_if=_omitted_when_none)
    data: dict[str, Any]

    @property
    def topic(self) -> str:
        return kind_of(self.type).topic

    def payload(self) -> Payload:
        """The typed data, validated once; raises pydantic.ValidationError or UnknownEventType."""
        cached = self.__dict__.get(_PAYLOAD_CACHE)
        if cached is not None and cached[0] is self.data:
            payload: Payload = cached[1]
            return payload
        payload = kind_of(self.type).payload.model_validate(self.data)
        _cache_payload(self, payload)
        return payload

    def data_as(self, payload_type: builtins.type[P]) -> P:
        """The typed data of an event known to be of `payload_type`'s event type."""
        payload = self.payload()
        if not isinstance(payload, payload_type):
            raise TypeError(f"{self.type} carries {type(payload).__name__}, not {payload_type}")
        return payload

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> CloudEvent:
        """The envelope, validated; `data` is validated when `payload()` is first asked."""
        return cls.model_validate_json(raw)


_ENVELOPE_FIELDS = frozenset(CloudEvent.model_fields)


def _assemble(fields: dict[str, Any]) -> CloudEvent:
    """A CloudEvent of fields valid by construction, set up as
    `CloudEvent.model_construct(**fields)` sets it up in about a third of its time
    (`model_construct` looks at every field's default; `new_event` is on the hot path of every
    consumer that emits). `fields` holds every envelope field, no extension attribute; a unit
    test checks the result equals model_construct's, so a pydantic that keeps its models
    otherwise fails it."""
    event = CloudEvent.__new__(CloudEvent)
    object.__setattr__(event, "__dict__", fields)
    object.__setattr__(event, "__pydantic_fields_set__", set(_ENVELOPE_FIELDS))
    object.__setattr__(event, "__pydantic_extra__", {})
    object.__setattr__(event, "__pydantic_private__", None)
    return event


# The typed payload is kept beside the envelope's fields, outside pydantic: a private attribute
# would cost about 10 µs per event on the consumers' hot path (set at construction, looked up
# through __getattr__). It is keyed by the `data` it was validated from, so a copy with other
# data (model_copy(update=...)) validates its own; serialisation and equality never see it.
_PAYLOAD_CACHE = "_fedelta_payload"


def _cache_payload(event: CloudEvent, payload: Payload) -> None:
    object.__setattr__(event, _PAYLOAD_CACHE, (event.data, payload))


def kind_of(event_type: str) -> EventKind:
    try:
        return EVENT_KINDS[event_type]
    except KeyError:
        raise UnknownEventType(f"unknown event type {event_type!r}") from None


_DERIVED_IDS = uuid.UUID("6f1c1a53-2d4e-4f0e-9a43-5b0f7c0de1a1")
_DERIVED_IDS_BYTES = _DERIVED_IDS.bytes


def _uuid5(name: str) -> str:
    """`str(uuid.uuid5(_DERIVED_IDS, name))` in a third of the time: every earning, reversal and
    tier change derives an id on the consumers' hot path, and uuid.UUID's checks cost most."""
    digest = bytearray(hashlib.sha1(_DERIVED_IDS_BYTES + name.encode()).digest()[:16])  # noqa: S324
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def _uuid7(instant: datetime) -> str:
    """A UUIDv7 (RFC 9562): the instant's milliseconds since the epoch, then 74 random bits.
    Ids of events made close in time sort close together, so each consumer's inbox, whose key
    they are, takes new ids into the few index pages it just wrote (a random UUIDv4 lands on
    any page of an index larger than memory: the costliest statement of a batch)."""
    milliseconds = (instant - _EPOCH) // _MILLISECOND & 0xFFFF_FFFF_FFFF
    digest = bytearray(milliseconds.to_bytes(6, "big") + os.urandom(10))
    digest[6] = (digest[6] & 0x0F) | 0x70  # version 7
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# While a consumer applies a batch (shared.messaging.tracing), which id was derived from which
# cause, so that an event a handler derives carries its cause's trace.
DERIVED_FROM: ContextVar[dict[str, str] | None] = ContextVar("fedelta_derived_from", default=None)


def derived_event_id(cause_id: str, purpose: str) -> str:
    """The same id every time one cause yields one effect, so a replay re-emits, not duplicates."""
    derived = _uuid5(f"{cause_id}/{purpose}")
    derivations = DERIVED_FROM.get()
    if derivations is not None:
        derivations[derived] = cause_id
    return derived


def new_event(
    payload: Payload,
    *,
    source: str,
    subject: str,
    time: datetime,
    event_id: str | None = None,
    traceparent: str | None = None,
) -> CloudEvent:
    """Wrap a payload in an envelope; its type follows from the payload's class. `source` is
    the producer's name or an absolute URI (see `source_uri`).

    The one way every event is made. The payload was validated when it was built; the
    envelope's fields are made here, valid by construction, so the envelope is not validated
    again (a producer makes an event per purchase: validation would cost a third of it).
    Without `event_id`, the event's id is a UUIDv7 of its `time`."""
    if time.tzinfo is None or not subject:
        raise ValueError("an event needs an aware time and a subject")
    event_type = _TYPE_OF_PAYLOAD[type(payload)]
    event = _assemble(
        {
            "specversion": "1.0",
            "id": event_id or _uuid7(time),
            "source": source_uri(source),
            "type": event_type,
            "subject": subject,
            "time": _to_utc(time),
            "datacontenttype": "application/json",
            "dataschema": _SCHEMA_URIS[event_type],
            "traceparent": traceparent or CURRENT_TRACEPARENT.get(),
            "tracestate": None,
            "data": payload.model_dump(mode="json"),
        }
    )
    _cache_payload(event, payload)
    return event


_SCHEMA_URIS = {event_type: schema_uri(event_type) for event_type in EVENT_KINDS}
