"""Events as the services receive them, built one way for every test: each factory takes what
a test usually varies and defaults the rest. A test that needs another shape wraps these."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
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
