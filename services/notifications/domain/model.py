"""Who may be told what, and what happens to a message. Pure Python: no I/O, time passed in."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class Channel(StrEnum):
    EMAIL = "email"


class DeliveryStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its send time, its contact or a retry
    SENT = "sent"
    FAILED = "failed"  # every attempt failed
    SUPPRESSED = "suppressed"  # deliberately not sent: no contact, no address or no consent


@dataclass(frozen=True)
class Contact:
    """The customer's personal data: the only PII of the platform lives here."""

    customer_id: str
    locale: str
    time_zone: str
    updated_at: datetime
    email: str | None = None
    phone: str | None = None
    consent_email: bool = False
    consent_sms: bool = False
    # Ingest's per-customer sequence number; None only for profiles from before it existed.
    profile_version: int | None = None

    def supersedes(self, stored: Contact) -> bool:
        """Whether this profile replaces the stored one. Versions decide, since ingest assigns
        them under the customer's row lock while event times come from unsynchronised clocks:
        a versioned profile beats an unversioned one, and only two unversioned profiles fall
        back to their times (the later, or the same, wins)."""
        if stored.profile_version is None:
            return self.profile_version is not None or stored.updated_at <= self.updated_at
        return self.profile_version is not None and self.profile_version > stored.profile_version


@dataclass(frozen=True)
class Delivery:
    """One message to one customer over one channel, from scheduling to its outcome."""

    notification_id: str
    customer_id: str
    channel: Channel
    template: str
    cause_event_id: str
    created_at: datetime
    next_attempt_at: datetime
    status: DeliveryStatus = DeliveryStatus.SCHEDULED
    attempts: int = 0
    sent_at: datetime | None = None
    last_error: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int = 5
    retry_backoff: timedelta = timedelta(seconds=30)
    retry_backoff_max: timedelta = timedelta(hours=1)
    contact_wait: timedelta = timedelta(minutes=10)
    # How often a message waiting for its contact looks again; it must not be picked up on
    # every dispatch round, or a crowd of waiting messages would starve the sendable ones.
    contact_recheck: timedelta = timedelta(seconds=15)


def schedule(
    *,
    notification_id: str,
    customer_id: str,
    channel: Channel,
    template: str,
    cause_event_id: str,
    now: datetime,
    params: dict[str, Any] | None = None,
) -> Delivery:
    return Delivery(
        notification_id=notification_id,
        customer_id=customer_id,
        channel=channel,
        template=template,
        cause_event_id=cause_event_id,
        created_at=now,
        next_attempt_at=now,
        params=params or {},
    )


@dataclass(frozen=True)
class Send:
    address: str
    locale: str


@dataclass(frozen=True)
class Wait:
    until: datetime


@dataclass(frozen=True)
class Suppress:
    reason: str


Decision = Send | Wait | Suppress

NO_CONTACT = "no contact"
NO_ADDRESS = "no email address"
NO_CONSENT = "no email consent"


def decide(
    delivery: Delivery, contact: Contact | None, now: datetime, policy: DeliveryPolicy
) -> Decision:
    """Whether a due message may go out now, looking at the contact as it is at send time."""
    if contact is None:
        # The contact comes on another topic than e.g. tier changes, so it may still be on its way.
        deadline = delivery.created_at + policy.contact_wait
        if now < deadline:
            return Wait(until=min(deadline, now + policy.contact_recheck))
        return Suppress(NO_CONTACT)
    if delivery.channel is Channel.EMAIL:
        if not contact.email:
            return Suppress(NO_ADDRESS)
        if not contact.consent_email:
            return Suppress(NO_CONSENT)
        return Send(address=contact.email, locale=contact.locale)
    return Suppress(f"channel {delivery.channel} is not supported")


def retry_delay(failed_attempts: int, policy: DeliveryPolicy) -> timedelta:
    """Exponential backoff: base, 2 * base, 4 * base ... after the 1st, 2nd, 3rd failure; capped."""
    if failed_attempts < 1:
        raise ValueError("a retry follows at least one failed attempt")
    # The exponent is bounded so that a large attempt count cannot overflow timedelta.
    factor: int = 2 ** min(failed_attempts - 1, 32)
    return min(policy.retry_backoff * factor, policy.retry_backoff_max)


def mark_sent(delivery: Delivery, now: datetime) -> Delivery:
    return replace(
        delivery,
        status=DeliveryStatus.SENT,
        attempts=delivery.attempts + 1,
        sent_at=now,
        last_error=None,
    )


def mark_suppressed(delivery: Delivery, reason: str) -> Delivery:
    return replace(delivery, status=DeliveryStatus.SUPPRESSED, last_error=reason)


def mark_waiting(delivery: Delivery, until: datetime) -> Delivery:
    return replace(delivery, next_attempt_at=until)


def mark_attempt_failed(
    delivery: Delivery, error: str, now: datetime, policy: DeliveryPolicy, *, permanent: bool
) -> Delivery:
    """Retried later with backoff, or failed for good after the last attempt (or a permanent
    refusal such as an SMTP 5xx, which no retry would change)."""
    attempts = delivery.attempts + 1
    if permanent or attempts >= policy.max_attempts:
        return replace(delivery, status=DeliveryStatus.FAILED, attempts=attempts, last_error=error)
    return replace(
        delivery,
        attempts=attempts,
        last_error=error,
        next_attempt_at=now + retry_delay(attempts, policy),
    )
