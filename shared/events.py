"""The event contract: the CloudEvents 1.0 envelope and every payload model of the product.

Money is Decimal (a JSON string on the wire), every instant aware UTC. A JSON Schema and an
AsyncAPI document are generated from these models (`python -m shared.schema`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
)

from shared import topics


def _to_utc(instant: datetime) -> datetime:
    return instant.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
# A decimal amount that never becomes a float: validated from strings or numbers,
# written as a string so no JSON parser on the way rounds it.
Money = Annotated[
    Decimal,
    Field(max_digits=14, decimal_places=2),
    PlainSerializer(lambda amount: str(amount), return_type=str, when_used="json"),
]
PositiveMoney = Annotated[Money, Field(gt=0)]


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Consent(Payload):
    email: bool = False
    sms: bool = False


class CustomerProfile(Payload):
    customer_id: str = Field(min_length=1, max_length=64)
    partner_id: str
    enrolled_at: UtcDatetime
    locale: str = "en"
    time_zone: str = "UTC"
    email: str | None = None
    phone: str | None = None
    consent: Consent = Consent()
    referred_by: str | None = None


class CustomerEnrolled(CustomerProfile):
    pass


class CustomerUpdated(CustomerProfile):
    pass


class CustomerErased(Payload):
    customer_id: str


class PurchaseItem(Payload):
    sku: str
    category: str | None = None
    quantity: Decimal = Field(gt=0)
    unit_price: Money = Field(ge=0)


class PurchaseCompleted(Payload):
    purchase_id: str
    partner_id: str
    store_id: str | None = None
    customer_id: str
    occurred_at: UtcDatetime
    currency: str = Field(min_length=3, max_length=3)
    total: PositiveMoney
    items: list[PurchaseItem] | None = None


class PurchaseRefunded(Payload):
    refund_id: str
    purchase_id: str
    partner_id: str
    customer_id: str
    occurred_at: UtcDatetime
    amount: PositiveMoney


class PointsEarned(Payload):
    customer_id: str
    points: int
    purchase_id: str | None = None
    reason: str
    rule_ids: list[str] = []
    available_at: UtcDatetime
    expires_at: UtcDatetime


class PointsRedeemed(Payload):
    customer_id: str
    points: int
    redemption_id: str
    reward: str


class PointsReversed(Payload):
    customer_id: str
    points: int
    refund_id: str


class PointsExpiring(Payload):
    customer_id: str
    points: int
    expires_at: UtcDatetime


class PointsExpired(Payload):
    customer_id: str
    points: int


class PointsAdjusted(Payload):
    customer_id: str
    points: int
    reason: str
    actor: str


TierName = Literal["bronze", "silver", "gold", "platinum"]


class TierChanged(Payload):
    customer_id: str
    from_tier: TierName
    to_tier: TierName
    direction: Literal["up", "down"]
    reason: str
    effective_at: UtcDatetime
    review_at: UtcDatetime


class NotificationOutcome(Payload):
    notification_id: str
    customer_id: str
    channel: Literal["email", "sms", "webhook"]
    template: str
    attempt: int


class NotificationDelivered(NotificationOutcome):
    pass


class NotificationFailed(NotificationOutcome):
    error: str | None = None


CUSTOMER_ENROLLED = "fedelta.customer.enrolled.v1"
CUSTOMER_UPDATED = "fedelta.customer.updated.v1"
CUSTOMER_ERASED = "fedelta.customer.erased.v1"
PURCHASE_COMPLETED = "fedelta.purchase.completed.v1"
PURCHASE_REFUNDED = "fedelta.purchase.refunded.v1"
POINTS_EARNED = "fedelta.points.earned.v1"
POINTS_REDEEMED = "fedelta.points.redeemed.v1"
POINTS_REVERSED = "fedelta.points.reversed.v1"
POINTS_EXPIRING = "fedelta.points.expiring.v1"
POINTS_EXPIRED = "fedelta.points.expired.v1"
POINTS_ADJUSTED = "fedelta.points.adjusted.v1"
TIER_CHANGED = "fedelta.tier.changed.v1"
NOTIFICATION_DELIVERED = "fedelta.notification.delivered.v1"
NOTIFICATION_FAILED = "fedelta.notification.failed.v1"


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
        EventKind(event_type=POINTS_EARNED, topic=topics.POINTS, payload=PointsEarned),
        EventKind(event_type=POINTS_REDEEMED, topic=topics.POINTS, payload=PointsRedeemed),
        EventKind(event_type=POINTS_REVERSED, topic=topics.POINTS, payload=PointsReversed),
        EventKind(event_type=POINTS_EXPIRING, topic=topics.POINTS, payload=PointsExpiring),
        EventKind(event_type=POINTS_EXPIRED, topic=topics.POINTS, payload=PointsExpired),
        EventKind(event_type=POINTS_ADJUSTED, topic=topics.POINTS, payload=PointsAdjusted),
        EventKind(event_type=TIER_CHANGED, topic=topics.TIERS, payload=TierChanged),
        EventKind(
            event_type=NOTIFICATION_DELIVERED,
            topic=topics.NOTIFICATIONS,
            payload=NotificationDelivered,
        ),
        EventKind(
            event_type=NOTIFICATION_FAILED, topic=topics.NOTIFICATIONS, payload=NotificationFailed
        ),
    )
}
_TYPE_OF_PAYLOAD = {kind.payload: kind.event_type for kind in EVENT_KINDS.values()}


class UnknownEventType(ValueError):
    pass


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
    data: dict[str, Any]

    @property
    def topic(self) -> str:
        return kind_of(self.type).topic

    def payload(self) -> Payload:
        """The typed data; raises pydantic.ValidationError or UnknownEventType."""
        return kind_of(self.type).payload.model_validate(self.data)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> CloudEvent:
        return cls.model_validate_json(raw)


def kind_of(event_type: str) -> EventKind:
    try:
        return EVENT_KINDS[event_type]
    except KeyError:
        raise UnknownEventType(f"unknown event type {event_type!r}") from None


_DERIVED_IDS = uuid.UUID("6f1c1a53-2d4e-4f0e-9a43-5b0f7c0de1a1")


def derived_event_id(cause_id: str, purpose: str) -> str:
    """The same id every time one cause yields one effect, so a replay re-emits, not duplicates."""
    return str(uuid.uuid5(_DERIVED_IDS, f"{cause_id}/{purpose}"))


def new_event(
    payload: Payload,
    *,
    source: str,
    subject: str,
    time: datetime,
    event_id: str | None = None,
) -> CloudEvent:
    """Wrap a payload in an envelope; its type follows from the payload's class."""
    return CloudEvent(
        id=event_id or str(uuid.uuid4()),
        source=source,
        type=_TYPE_OF_PAYLOAD[type(payload)],
        subject=subject,
        time=time,
        data=payload.model_dump(mode="json"),
    )
