"""Who may be told what, and what happens to a message. Pure Python: no I/O, time passed in."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import IntEnum, StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from shared.messaging.events import derived_event_id


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    # The partner that enrolled the customer, told by a signed HTTP call: a machine channel,
    # so neither quiet hours nor the daily cap apply, and it carries no contact data.
    WEBHOOK = "webhook"


# The channels a person reads: their consent, quiet hours and daily cap apply.
PERSONAL_CHANNELS = frozenset({Channel.EMAIL, Channel.SMS})


class Hold(StrEnum):
    """Why a message that could go out waits instead: never harass the customer."""

    QUIET_HOURS = "quiet hours"
    FREQUENCY_CAP = "frequency cap"
    # A digest gathering its window's earnings, or the expiry warnings of a window of days:
    # a job run as of a later instant releases it like the other holds.
    DIGEST_WINDOW = "digest window"


class DeliveryStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for its send time, its contact, a retry or a `Hold`
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
    # The partner that enrolled the customer: the one its webhook tells. None only for
    # profiles stored before it was kept.
    partner_id: str | None = None

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
    hold: Hold | None = None  # set while it waits for the end of quiet hours or of the cap
    # The instant a job released it as of (replaying a date): the never-harass rules are then
    # applied at that instant when it is later than the dispatcher's clock.
    released_as_of: datetime | None = None


@dataclass(frozen=True)
class QuietHours:
    """A daily window, in the customer's wall-clock time, when nothing is sent. A start after
    the end crosses midnight (21:00-08:00); a start equal to the end means no quiet hours."""

    start: time = time(21, 0)
    end: time = time(8, 0)

    def contains(self, wall: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end


@dataclass(frozen=True)
class Preferences:
    """What the customer chose; the consent from ingest stays the legal basis, so a channel is
    used only with both. Time zone and locale, when set, replace the profile's."""

    customer_id: str
    updated_at: datetime
    email: bool = True
    sms: bool = True
    quiet_hours: QuietHours = field(default_factory=QuietHours)
    time_zone: str | None = None
    locale: str | None = None


@dataclass(frozen=True)
class HarassmentPolicy:
    quiet_hours: QuietHours = field(default_factory=QuietHours)
    daily_cap: int = 3


def time_zone_of(contact: Contact | None, preferences: Preferences | None) -> ZoneInfo:
    name = (preferences.time_zone if preferences else None) or (
        contact.time_zone if contact else None
    )
    try:
        return ZoneInfo(name or "UTC")
    except (ValueError, KeyError):  # a name ingest accepted but this host lacks: UTC
        return ZoneInfo("UTC")


def _at(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The instant a wall-clock time happens on a day. A time skipped by a spring-forward
    gap resolves after the gap; a repeated autumn time, to its first occurrence. In UTC:
    Python compares and subtracts datetimes of one zone by their wall clocks."""
    return datetime.combine(day, wall, tzinfo=zone).astimezone(UTC)


def local_day(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The customer's calendar day around `now`, as [start, end) instants: 23 or 25 hours
    long on DST days."""
    today = now.astimezone(zone).date()
    return _at(today, time(0), zone), _at(today + timedelta(days=1), time(0), zone)


def quiet_hours_end(now: datetime, quiet: QuietHours, zone: ZoneInfo) -> datetime | None:
    """When the quiet hours `now` falls in end, or None when `now` is outside them."""
    local = now.astimezone(zone)
    wall = local.time().replace(tzinfo=None)
    if not quiet.contains(wall):
        return None
    end_day = local.date()
    if quiet.start > quiet.end and wall >= quiet.start:
        end_day += timedelta(days=1)  # the window crosses midnight: it ends tomorrow
    end = _at(end_day, quiet.end, zone)
    return end if end > now else None


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
    send_at: datetime | None = None,
    hold: Hold | None = None,
) -> Delivery:
    return Delivery(
        notification_id=notification_id,
        customer_id=customer_id,
        channel=channel,
        template=template,
        cause_event_id=cause_event_id,
        created_at=now,
        next_attempt_at=send_at or now,
        params=params or {},
        hold=hold,
    )


POINTS_EARNED_DIGEST = "points_earned"


def merge_earning(digest: Delivery, earning_id: str, points: int) -> Delivery:
    """Adds an earning to a points digest still gathering them; an earning it already holds
    (a redelivered event) changes nothing."""
    earning_ids = list(digest.params.get("earning_ids", []))
    if earning_id in earning_ids:
        return digest
    params = {
        **digest.params,
        "points": int(digest.params.get("points", 0)) + points,
        "earnings": int(digest.params.get("earnings", 0)) + 1,
        "earning_ids": [*earning_ids, earning_id],
    }
    return replace(digest, params=params)


POINTS_EXPIRING = "points_expiring"


@dataclass(frozen=True)
class ExpiryWindow:
    """The days, in the customer's time zone, whose expiring points one message warns of:
    `days` consecutive local days from `first_day` (1: a calendar day). Windows of several
    days are counted from 0001-01-01, a Monday, so 7 gives calendar weeks."""

    first_day: date
    days: int
    zone: ZoneInfo

    @property
    def end(self) -> datetime:
        return _at(self.first_day + timedelta(days=self.days), time(0), self.zone)


def expiry_window(expires_at: datetime, zone: ZoneInfo, days: int = 1) -> ExpiryWindow:
    local = expires_at.astimezone(zone).date()
    first = date.fromordinal(local.toordinal() - (local.toordinal() - 1) % days)
    return ExpiryWindow(first_day=first, days=days, zone=zone)


def expiry_warning_params(
    warning_id: str, points: int, expires_at: datetime, zone: ZoneInfo
) -> dict[str, Any]:
    """The params of a merged expiry warning holding one lot's warning: the total, the
    earliest expiry (when the message goes stale), the first and last local expiry days it
    names, and the ids of the warnings merged, so that a redelivered one adds nothing."""
    day = expires_at.astimezone(zone).date().isoformat()
    return {
        "points": points,
        "expires_at": expires_at.astimezone(UTC).isoformat(),
        "expires_on": day,
        "expires_until": day,
        "warnings": 1,
        "warning_ids": [warning_id],
    }


def merge_expiry_warning(
    warning: Delivery, warning_id: str, points: int, expires_at: datetime, zone: ZoneInfo
) -> Delivery:
    """Adds a lot's warning to the merged warning of its window; a warning it already holds
    (a redelivered event) changes nothing, so the total is the sum over distinct lots
    whatever the order and duplication of the events."""
    merged = list(warning.params.get("warning_ids", []))
    if warning_id in merged:
        return warning
    lot = expiry_warning_params(warning_id, points, expires_at, zone)
    earliest = _instant(warning.params.get("expires_at"))
    params = {
        **warning.params,
        "points": int(warning.params.get("points", 0)) + points,
        "expires_at": lot["expires_at"]
        if earliest is None or expires_at < earliest
        else warning.params["expires_at"],
        "expires_on": min(warning.params.get("expires_on", lot["expires_on"]), lot["expires_on"]),
        "expires_until": max(
            warning.params.get("expires_until", lot["expires_until"]), lot["expires_until"]
        ),
        "warnings": int(warning.params.get("warnings", 1)) + 1,
        "warning_ids": [*merged, warning_id],
    }
    return replace(warning, params=params)


def expiry_warning_send_at(
    now: datetime, expires_at: datetime, window: ExpiryWindow, hold: timedelta
) -> datetime:
    """When the merged warning of a window goes out, its first lot's warning arriving at
    `now`: once the other lots of the window have been warned too. Points warns of a lot a
    fixed lead before it expires (at the first run of its job after that), so a lot expiring
    at the end of the window is warned (window end - this lot's expiry) after this one, at
    most one job interval later: `hold` covers that interval. Never later than half-way to
    the expiry, so that a lot warned of shortly before it expires is still told in time."""
    gathered = now + (window.end - expires_at) + hold
    return max(now, min(gathered, now + (expires_at - now) / 2))


@dataclass(frozen=True)
class PartnerWebhook:
    """Where a partner is told about the customers it enrolled, and the secret its calls are
    signed with (HMAC-SHA256, as the partner signs its calls to ingest)."""

    partner_id: str
    url: str
    secret: str = field(repr=False)
    created_at: datetime


@dataclass(frozen=True)
class Send:
    address: str  # the email address, the phone number or the webhook's URL
    locale: str


@dataclass(frozen=True)
class Wait:
    until: datetime
    hold: Hold | None = None


@dataclass(frozen=True)
class Suppress:
    reason: str


Decision = Send | Wait | Suppress

NO_CONTACT = "no contact"
NO_ADDRESS = "no email address"
NO_CONSENT = "no email consent"
OPTED_OUT = "email turned off in the preferences"
NO_PHONE = "no phone number"
NO_SMS_CONSENT = "no sms consent"
SMS_OPTED_OUT = "sms turned off in the preferences"
NO_PARTNER = "no partner known for the customer"
NO_WEBHOOK = "no webhook registered by the partner"

# A points digest not sent within this long of its first earning says nothing useful any more.
DIGEST_STALE_AFTER = timedelta(days=2)


def stale_reason(delivery: Delivery, at: datetime) -> str | None:
    """Why a message would be pointless if it went out at `at`, or None while it is not:
    an expiry warning after the expiry, a downgrade warning after the review, a points
    digest more than DIGEST_STALE_AFTER old, a coupon's confirmation (it carries the code)
    after the coupon's expiry, a win-back offer once the offer has ended, a sign-in link once
    it has expired (or when it says not until when it is valid). The other messages stay true,
    so never stale."""
    if delivery.template == "points_expiring":
        expires_at = _instant(delivery.params.get("expires_at"))
        if expires_at is not None and expires_at <= at:
            return "the points it warns about have expired"
    elif delivery.template == "redemption_confirmed" and "coupon_id" in delivery.params:
        expires_at = _instant(delivery.params.get("expires_at"))
        if expires_at is not None and expires_at <= at:
            return "the coupon it carries has expired"
    elif delivery.template == "tier_downgrade_warning":
        review_at = _instant(delivery.params.get("review_at"))
        if review_at is not None and review_at <= at:
            return "the tier review it warns about is past"
    elif delivery.template == WIN_BACK_OFFER:
        ends_at = _instant(delivery.params.get("ends_at"))
        if ends_at is not None and ends_at <= at:
            return "the offer it states has ended"
    elif delivery.template == SIGN_IN:
        expires_at = _instant(delivery.params.get("expires_at"))
        if expires_at is None or expires_at <= at:
            return "the sign-in link it carries has expired"
    elif (
        delivery.template == POINTS_EARNED_DIGEST and delivery.created_at + DIGEST_STALE_AFTER <= at
    ):
        return f"a points digest older than {DIGEST_STALE_AFTER.days} days"
    return None


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def decide(
    delivery: Delivery,
    contact: Contact | None,
    now: datetime,
    policy: DeliveryPolicy,
    *,
    preferences: Preferences | None = None,
    harassment: HarassmentPolicy | None = None,
    sent_today: int = 0,
    webhook: PartnerWebhook | None = None,
) -> Decision:
    """Whether a due message may go out now, looking at the contact and the preferences as
    they are at send time; `sent_today` counts what went out on the customer's day of `now`.
    Never harass: in quiet hours it waits for their end, over the daily cap for the next day,
    unless it would be stale by then (`stale_reason`): then it is dropped."""
    if contact is None:
        # The contact comes on another topic than e.g. tier changes, so it may still be on its way.
        deadline = delivery.created_at + policy.contact_wait
        if now < deadline:
            return Wait(until=min(deadline, now + policy.contact_recheck))
        return Suppress(NO_CONTACT)
    if delivery.channel is Channel.WEBHOOK:
        if contact.partner_id is None:
            return Suppress(NO_PARTNER)
        if webhook is None or webhook.partner_id != contact.partner_id:
            return Suppress(NO_WEBHOOK)
        return Send(address=webhook.url, locale=contact.locale)
    if delivery.template in REQUESTED_TEMPLATES:
        return _requested(delivery, contact, preferences, now)
    refusal = _refusal(delivery.channel, contact, preferences)
    if refusal is not None:
        return Suppress(refusal)
    stale = stale_reason(delivery, now)
    if stale is not None:
        return Suppress(f"stale: {stale}")
    if harassment is not None:
        held = never_harass(contact, preferences, now, harassment, sent_today)
        if held is not None:
            if held.hold is Hold.FREQUENCY_CAP:
                stale = stale_reason(delivery, held.until)
                if stale is not None:
                    return Suppress(f"over the daily cap and stale by the next day: {stale}")
            return held
    address = contact.email if delivery.channel is Channel.EMAIL else contact.phone
    assert address is not None  # _refusal checked it
    locale = (preferences.locale if preferences else None) or contact.locale
    return Send(address=address, locale=locale)


def _requested(
    delivery: Delivery, contact: Contact, preferences: Preferences | None, now: datetime
) -> Decision:
    """A message the member asked for a moment ago (REQUESTED_TEMPLATES): by email only, to
    the address as it is now, unless it is stale; consent, the email preference, quiet hours
    and the daily cap govern what the programme chooses to send, not what the member asks for."""
    if delivery.channel is not Channel.EMAIL:
        return Suppress(f"a {delivery.template} message goes by email only")
    if not contact.email:
        return Suppress(NO_ADDRESS)
    stale = stale_reason(delivery, now)
    if stale is not None:
        return Suppress(f"stale: {stale}")
    locale = (preferences.locale if preferences else None) or contact.locale
    return Send(address=contact.email, locale=locale)


def _refusal(channel: Channel, contact: Contact, preferences: Preferences | None) -> str | None:
    """Why a personal channel may not be used for this customer, or None when it may."""
    if channel is Channel.EMAIL:
        if not contact.email:
            return NO_ADDRESS
        if not contact.consent_email:
            return NO_CONSENT
        if preferences is not None and not preferences.email:
            return OPTED_OUT
        return None
    if channel is Channel.SMS:
        if not contact.phone:
            return NO_PHONE
        if not contact.consent_sms:
            return NO_SMS_CONSENT
        if preferences is not None and not preferences.sms:
            return SMS_OPTED_OUT
        return None
    return f"channel {channel} is not supported"


def never_harass(
    contact: Contact | None,
    preferences: Preferences | None,
    now: datetime,
    harassment: HarassmentPolicy,
    sent_today: int,
) -> Wait | None:
    """Quiet hours first (what waits for their end is counted on the day it goes out), then
    the cap: over it, the message waits for the customer's next day (whose quiet hours, if
    it starts in them, hold it again at that point)."""
    zone = time_zone_of(contact, preferences)
    quiet = preferences.quiet_hours if preferences else harassment.quiet_hours
    quiet_end = quiet_hours_end(now, quiet, zone)
    if quiet_end is not None:
        return Wait(until=quiet_end, hold=Hold.QUIET_HOURS)
    if sent_today >= harassment.daily_cap:
        return Wait(until=local_day(now, zone)[1], hold=Hold.FREQUENCY_CAP)
    return None


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
        hold=None,
    )


def mark_suppressed(delivery: Delivery, reason: str) -> Delivery:
    return replace(delivery, status=DeliveryStatus.SUPPRESSED, last_error=reason)


def mark_waiting(delivery: Delivery, until: datetime, hold: Hold | None = None) -> Delivery:
    return replace(delivery, next_attempt_at=until, hold=hold, released_as_of=None)


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


WIN_BACK = "win_back"
# The win-back that states a personal offer points granted (domain/win_back_offers.py).
WIN_BACK_OFFER = "win_back_offer"
DEFAULT_WIN_BACK_AFTER = timedelta(days=90)


@dataclass(frozen=True)
class PurchaseActivity:
    """When a customer last bought, and the purchase their last win-back message was for."""

    customer_id: str
    last_purchase_at: datetime
    win_back_for: datetime | None = None


def is_lapsed(activity: PurchaseActivity, as_of: datetime, after: timedelta) -> bool:
    """No purchase for `after` by `as_of`, and no win-back yet for this lapse: one message per
    lapse, the next only once the customer has bought again and lapsed again."""
    return activity.last_purchase_at <= as_of - after and (
        activity.win_back_for is None or activity.win_back_for < activity.last_purchase_at
    )


def covered_by_offer(activity: PurchaseActivity, offer_starts_at: datetime) -> datetime | None:
    """The lapse a win-back offer starting at `offer_starts_at` is for, as the win-back job
    marks it (`win_back_for`): the customer's last purchase, when it is no later than the
    offer's start and no win-back was for it yet; None when there is nothing to mark (a
    purchase after the start is a new activity: its lapse, if any, is a new one)."""
    last = activity.last_purchase_at
    if last > offer_starts_at or not (
        activity.win_back_for is None or activity.win_back_for < last
    ):
        return None
    return last


def win_back_cause(activity: PurchaseActivity) -> str:
    """The cause a win-back message is derived from: the lapse, i.e. the customer and their
    last purchase, so that each lapse yields one message whatever runs the job again."""
    return f"win-back/{activity.customer_id}/{activity.last_purchase_at.isoformat()}"


def channels_for(contact: Contact | None, partners_with_webhooks: Collection[str]) -> list[Channel]:
    """The channels a message for this customer is scheduled on: email always (its fate,
    sent or suppressed with the reason, is in the delivery log); SMS when the customer gave
    a phone and SMS consent; the enrolling partner's webhook when it registered one. Each is
    decided again at send time, on the contact and preferences as they are then."""
    channels = [Channel.EMAIL]
    if contact is not None and contact.phone and contact.consent_sms:
        channels.append(Channel.SMS)
    if contact is not None and contact.partner_id in partners_with_webhooks:
        channels.append(Channel.WEBHOOK)
    return channels


# -- Dispatch: priority lanes and the decisions of a batch ----------------------------------


class Lane(IntEnum):
    """Which queue a message waits in: the dispatcher claims the transactional lane first, so
    a message a customer is waiting for right now is never queued behind a bulk run."""

    TRANSACTIONAL = 0  # the answer to something the customer just did, or just got
    BULK = 1  # what a job or a review sends to many customers at once; digests


# The one place a template's lane is decided. Every other template, and every one added later
# unless it is named here, is bulk: points_expiring, points_earned (the digest), win_back,
# tier_downgrade_warning and tier_down (both from the tier reviews, thousands at a time), and
# birthday (a yearly job's, to every member born that day). Engagement's answers to a purchase
# (a full stamp card, a challenge met, its badge, a surprise) are transactional.
TRANSACTIONAL_TEMPLATES = frozenset(
    {
        "welcome",
        "redemption_confirmed",
        "tier_up",
        "stamp_card_completed",
        "challenge_completed",
        "badge_earned",
        "surprise",
    }
)


# What the member asked for a moment ago and is waiting for, at the screen: a sign-in link.
# Transactional, and more: sent at once whatever the quiet hours and the daily cap (and not
# counted in it), and whatever the email consent and preference, which are about what the
# programme chooses to send (`_requested`); by email only.
SIGN_IN = "sign_in"
REQUESTED_TEMPLATES = frozenset({SIGN_IN})
# The templates the dispatcher claims first (the SQL lane reads this set).
TRANSACTIONAL_LANE = TRANSACTIONAL_TEMPLATES | REQUESTED_TEMPLATES


def lane_of(template: str) -> Lane:
    return Lane.TRANSACTIONAL if template in TRANSACTIONAL_LANE else Lane.BULK


# A sign-in link valid longer than this is refused: the wallet's live 15 minutes.
MAX_SIGN_IN_VALIDITY = timedelta(hours=24)


def sign_in_id(customer_id: str, url: str) -> str:
    """One message per link, so a call repeated with the same link (a retry) finds the message
    it made; derived from the link's digest, never the link."""
    digest = hashlib.sha256(url.encode()).hexdigest()
    return derived_event_id(f"customer/{customer_id}", f"{SIGN_IN}/{digest}")


def sign_in_refusal(expires_at: datetime, now: datetime) -> str | None:
    """Why a sign-in link may not be sent, or None: already expired, or valid too long."""
    if expires_at <= now:
        return "the link has already expired"
    if expires_at > now + MAX_SIGN_IN_VALIDITY:
        hours = int(MAX_SIGN_IN_VALIDITY.total_seconds() // 3600)
        return f"a sign-in link is valid for at most {hours} hours"
    return None


def sign_in_message(
    notification_id: str,
    customer_id: str,
    sealed_link: str,
    expires_at: datetime,
    zone: ZoneInfo,
    now: datetime,
) -> Delivery:
    """The `sign_in` email, due now: the link sealed (`link`, opened at send time, removed
    once settled), when it expires (stale after), and the zone its end is told in."""
    return schedule(
        notification_id=notification_id,
        customer_id=customer_id,
        channel=Channel.EMAIL,
        template=SIGN_IN,
        cause_event_id=notification_id,
        now=now,
        params={
            "link": sealed_link,
            "expires_at": expires_at.astimezone(UTC).isoformat(),
            "time_zone": zone.key,
        },
    )


def counts_against_cap(template: str) -> bool:
    """Whether a message sent is one of the day's messages the daily cap counts."""
    return template not in REQUESTED_TEMPLATES


# Params holding a secret (a sign-in link, sealed by the service before it is stored): kept
# only while the message waits, removed from the stored message once it is settled.
SECRET_PARAMS = frozenset({"link"})
SECRET_TEMPLATES = frozenset({SIGN_IN})


def guard_secrets(delivery: Delivery) -> Delivery:
    """A message carrying a secret as it is stored after a dispatch round: settled (sent,
    suppressed or failed), without its secret params; still waiting (a retry), due again no
    later than the moment it goes stale, so that it is then dropped, and its secret with it,
    rather than kept until a later retry."""
    if delivery.template not in SECRET_TEMPLATES:
        return delivery
    if delivery.status is not DeliveryStatus.SCHEDULED:
        return without_secrets(delivery)
    expires_at = _instant(delivery.params.get("expires_at"))
    if expires_at is not None and expires_at < delivery.next_attempt_at:
        return replace(delivery, next_attempt_at=expires_at)
    return delivery


def without_secrets(delivery: Delivery) -> Delivery:
    if not SECRET_PARAMS & delivery.params.keys():
        return delivery
    kept = {k: v for k, v in delivery.params.items() if k not in SECRET_PARAMS}
    return replace(delivery, params=kept)


@dataclass(frozen=True)
class SentMessage:
    """A message a customer was sent (or is about to be, in the batch being decided) over a
    channel they read: what the daily cap counts."""

    cause_event_id: str
    sent_at: datetime


@dataclass(frozen=True)
class DispatchReads:
    """What deciding a batch needs, loaded for the whole batch at once: the customers'
    contacts and preferences, the webhooks of their partners (by partner id), and per
    customer what they were sent over the span of days the batch is judged on."""

    contacts: dict[str, Contact] = field(default_factory=dict)
    preferences: dict[str, Preferences] = field(default_factory=dict)
    webhooks: dict[str, PartnerWebhook] = field(default_factory=dict)
    sent: dict[str, list[SentMessage]] = field(default_factory=dict)

    def webhook_for(self, delivery: Delivery) -> PartnerWebhook | None:
        contact = self.contacts.get(delivery.customer_id)
        if delivery.channel is not Channel.WEBHOOK or contact is None or not contact.partner_id:
            return None
        return self.webhooks.get(contact.partner_id)


def judged_at(delivery: Delivery, now: datetime) -> datetime:
    """The instant a message is judged as of: a message a job released as of a later instant
    (an operator or a test replaying a date) is judged as of that instant."""
    return max(now, delivery.released_as_of or now)


def judged_day(
    delivery: Delivery, reads: DispatchReads, now: datetime
) -> tuple[datetime, datetime]:
    """The customer's local day the message is judged on: the span whose sends the cap counts."""
    contact = reads.contacts.get(delivery.customer_id)
    preferences = reads.preferences.get(delivery.customer_id)
    return local_day(judged_at(delivery, now), time_zone_of(contact, preferences))


def sent_in(sent: Collection[SentMessage], day: tuple[datetime, datetime], other_than: str) -> int:
    """How many messages were sent in [start, end): one per triggering event whatever the
    number of channels it went out on, not counting the event `other_than`."""
    start, end = day
    return len(
        {
            m.cause_event_id
            for m in sent
            if start <= m.sent_at < end and m.cause_event_id != other_than
        }
    )


def decide_batch(
    due: Collection[Delivery],
    reads: DispatchReads,
    now: datetime,
    policy: DeliveryPolicy,
    harassment: HarassmentPolicy | None,
    channels: Collection[Channel],
) -> list[tuple[Delivery, Decision | None]]:
    """`decide` for each message of a batch, in order, as if they were decided one after the
    other with every earlier send committed: a send planned earlier in the batch counts
    against the customer's daily cap at `now`. A message whose fate only those planned
    sends change (held or dropped by the cap) is deferred (None): left due, it is decided
    again in the next batch, on the sends as recorded, so the cap stays exact even when a
    planned send fails; the customer's later messages in the batch are deferred with it, so
    each customer's messages are still decided in order. A message the member asked for
    (REQUESTED_TEMPLATES) is neither counted nor deferred. `channels` are those with a sender;
    a message for another is suppressed, saying so."""
    planned: dict[str, list[SentMessage]] = {}
    deferred: set[str] = set()
    decided: list[tuple[Delivery, Decision | None]] = []
    for delivery in due:
        customer = delivery.customer_id
        sent = reads.sent.get(customer, [])
        mine = planned.get(customer, [])
        day = judged_day(delivery, reads, now)

        def judge(sent_today: int, delivery: Delivery = delivery) -> Decision:
            return decide(
                delivery,
                reads.contacts.get(delivery.customer_id),
                judged_at(delivery, now),
                policy,
                preferences=reads.preferences.get(delivery.customer_id),
                harassment=harassment,
                sent_today=sent_today,
                webhook=reads.webhook_for(delivery),
            )

        counted = sent_in([*sent, *mine], day, delivery.cause_event_id)
        decision: Decision | None = judge(counted)
        if counts_against_cap(delivery.template) and (
            customer in deferred
            or (mine and decision != judge(sent_in(sent, day, delivery.cause_event_id)))
        ):
            # Only the sends planned in this batch change it: decided again in the next one,
            # and so are the customer's later messages, which are to be decided after it.
            deferred.add(customer)
            decision = None
        elif isinstance(decision, Send) and delivery.channel not in channels:
            decision = Suppress(f"no {delivery.channel.value} provider configured")
        elif (
            isinstance(decision, Send)
            and delivery.channel in PERSONAL_CHANNELS
            and counts_against_cap(delivery.template)
        ):
            planned.setdefault(customer, []).append(SentMessage(delivery.cause_event_id, now))
        decided.append((delivery, decision))
    return decided
