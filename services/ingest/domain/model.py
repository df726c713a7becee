"""Ingest's rules: what a POS may report. Pure Python: no framework, no I/O, time passed in."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

CENT = Decimal("0.01")


class RuleViolation(Exception):
    """A well-formed call that the program's rules refuse; the message says why."""

    slug = "rule-violation"


class UnknownCustomer(RuleViolation):
    slug = "unknown-customer"


class ReportedTooLate(RuleViolation):
    slug = "reported-too-late"


class UnknownPurchase(RuleViolation):
    slug = "unknown-purchase"


class RefundTooLarge(RuleViolation):
    slug = "refund-exceeds-remaining"

    def __init__(self, amount: Decimal, remaining: Decimal) -> None:
        super().__init__(
            f"refund of {amount} is more than the {remaining} that remains refundable "
            "on this purchase"
        )
        self.amount = amount
        self.remaining = remaining


@dataclass(frozen=True)
class Partner:
    partner_id: str
    name: str
    api_key_hash: str
    signing_secret: str
    created_at: datetime
    active: bool = True
    # Calls per second for the whole ingest instance (domain/rate_limits.py); None: the
    # default from settings.
    rate_limit_per_second: float | None = None


@dataclass(frozen=True)
class PartnerCredentials:
    """What a partner is given once: the key and secret are never shown again."""

    api_key: str
    signing_secret: str


@dataclass(frozen=True)
class CustomerProfile:
    """The current profile: `customer.updated` carries all of it, so ingest must keep it."""

    customer_id: str
    partner_id: str
    enrolled_at: datetime
    locale: str
    time_zone: str
    email: str | None
    phone: str | None
    consent_email: bool
    consent_sms: bool
    referred_by: str | None
    # 1 at enrolment, one more per change: consumers keep the profile with the highest.
    version: int = 1
    erased_at: datetime | None = None
    birthday: date | None = None


# What an erased profile keeps for its locale and time zone (both required): the defaults
# of an enrolment, which say nothing about the customer.
ERASED_LOCALE = "en"
ERASED_TIME_ZONE = "UTC"


def erased(profile: CustomerProfile, now: datetime) -> CustomerProfile:
    """The profile without its personal data (right to be forgotten): contact details, the
    language and time zone (which tell where the customer lives), the birthday and who
    referred them go; the id and the enrolling partner stay, pseudonymous, so the ledger
    still resolves."""
    return replace(
        profile,
        email=None,
        phone=None,
        consent_email=False,
        consent_sms=False,
        locale=ERASED_LOCALE,
        time_zone=ERASED_TIME_ZONE,
        referred_by=None,
        birthday=None,
        erased_at=now,
    )


@dataclass(frozen=True)
class Accepted:
    """A call already accepted under a natural id: a retry must get the same answer."""

    request_hash: str
    event_id: str


@dataclass(frozen=True)
class LineItem:
    quantity: Decimal
    unit_price: Decimal


PATCHABLE_FIELDS = frozenset(
    {"email", "phone", "locale", "time_zone", "consent_email", "consent_sms", "birthday"}
)

# A birthday is a calendar date from this one to today (anywhere on Earth: UTC+14 is the
# furthest ahead), checked against the injected clock.
EARLIEST_BIRTHDAY = date(1900, 1, 1)
_FURTHEST_AHEAD = timedelta(hours=14)


def ensure_birthday_in_range(birthday: date | None, now: datetime) -> None:
    if birthday is None:
        return
    if birthday < EARLIEST_BIRTHDAY:
        raise RuleViolation(f"birthday must be on or after {EARLIEST_BIRTHDAY.isoformat()}")
    if birthday > (now + _FURTHEST_AHEAD).date():
        raise RuleViolation("birthday is in the future")


def hash_api_key(api_key: str) -> str:
    # API keys are random 32-byte tokens, not passwords: nothing to guess, so a fast hash is
    # as good as a slow one here, and it lets a key be looked up by its hash in one query.
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_credentials() -> PartnerCredentials:
    return PartnerCredentials(
        api_key=secrets.token_urlsafe(32), signing_secret=secrets.token_urlsafe(32)
    )


def new_partner_id() -> str:
    return f"partner-{secrets.token_hex(6)}"


def request_hash(document: Mapping[str, Any]) -> str:
    """The fingerprint of a parsed request: key order and whitespace of the body don't count."""
    canonical = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def is_retry(previous: Accepted, current_hash: str) -> bool:
    """True for the same call again; False for another call reusing an id (a conflict)."""
    return previous.request_hash == current_hash


def money(amount: Decimal) -> Decimal:
    """An amount in cents, so that 49.9 and 49.90 are the same amount everywhere."""
    return amount.quantize(CENT)


def ensure_program_currency(currency: str, program_currency: str) -> None:
    if currency != program_currency:
        raise RuleViolation(
            f"currency {currency} is not accepted: the program currency is {program_currency}"
        )


def ensure_items_have_value(items: Iterable[LineItem]) -> None:
    """Points are shared out over items by value: a basket worth nothing cannot be shared."""
    if sum((item.quantity * item.unit_price for item in items), Decimal(0)) <= 0:
        raise RuleViolation(
            "items are worth nothing (the sum of quantity * unit_price is 0): "
            "send the items with their prices, or no items at all"
        )


def ensure_not_in_future(
    occurred_at: datetime, now: datetime, max_clock_skew: timedelta, *, what: str
) -> None:
    if occurred_at > now + max_clock_skew:
        raise RuleViolation(
            f"{what} occurred_at is in the future: at most "
            f"{int(max_clock_skew.total_seconds())}s ahead of the server clock is accepted"
        )


def ensure_not_too_old(
    occurred_at: datetime, now: datetime, max_age: timedelta, *, what: str
) -> None:
    """A purchase reported late would change a tier today and earn points already expired;
    beyond the program's window it is refused rather than rewritten."""
    if occurred_at < now - max_age:
        raise ReportedTooLate(
            f"{what} occurred_at is more than {max_age.days} days in the past: "
            "purchases and refunds must be reported within that time"
        )


def ensure_not_self_referral(customer_id: str, referred_by: str | None) -> None:
    if referred_by is not None and referred_by == customer_id:
        raise RuleViolation("a customer cannot be referred by themselves")


def refundable_remaining(total: Decimal, refunded: Decimal) -> Decimal:
    return max(total - refunded, Decimal(0))


def refunded_after(total: Decimal, refunded: Decimal, amount: Decimal) -> Decimal:
    """What has been refunded once `amount` is too; refuses to go beyond the total."""
    if amount <= 0:
        raise RuleViolation("a refund amount must be greater than 0")
    remaining = refundable_remaining(total, refunded)
    if amount > remaining:
        raise RefundTooLarge(amount, remaining)
    return refunded + amount


def ensure_refund_after_purchase(refunded_at: datetime, purchased_at: datetime) -> None:
    if refunded_at < purchased_at:
        raise RuleViolation("a refund cannot have occurred before its purchase")


def patched(profile: CustomerProfile, changes: Mapping[str, Any]) -> CustomerProfile:
    """The profile with a merge patch applied: fields not in `changes` stay as they were."""
    unknown = set(changes) - PATCHABLE_FIELDS
    if unknown:
        raise RuleViolation(f"these fields cannot be changed: {', '.join(sorted(unknown))}")
    for required in ("locale", "time_zone", "consent_email", "consent_sms"):
        if required in changes and changes[required] is None:
            raise RuleViolation(f"{required} cannot be removed, only changed")
    return replace(profile, **changes)
