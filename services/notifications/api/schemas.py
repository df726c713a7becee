"""What the notifications API answers; separate from the domain so either can change alone.

The delivery log shows no address and no message text: it is readable with the read scope.
"""

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool

from shared import bounds
from shared.bounds import Identifier


def _known_time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Rome"
        ) from None
    return name


WallClock = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["21:00"])]
Locale = Annotated[
    str, Field(max_length=35, pattern=r"^[A-Za-z]{2,3}([_\-][A-Za-z0-9]{2,8})*$", examples=["it"])
]
TimeZone = Annotated[
    str,
    Field(max_length=64, pattern=bounds.PRINTABLE_PATTERN, examples=["Europe/Rome"]),
    AfterValidator(_known_time_zone),
]


class NotificationOut(BaseModel):
    notification_id: str
    channel: str
    template: str
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    # When it is tried next while scheduled; why it was not sent when suppressed or failed
    # (a reason or an error class, never an address).
    next_attempt_at: datetime | None = None
    reason: str | None = None


class NotificationLogOut(BaseModel):
    items: list[NotificationOut]


class _Request(BaseModel):
    # A misspelt field must not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelsIn(_Request):
    email: StrictBool
    sms: StrictBool


class QuietHoursIn(_Request):
    """HH:MM in the customer's time zone; a start after the end crosses midnight, and a start
    equal to the end means no quiet hours."""

    start: WallClock
    end: WallClock


class PreferencesIn(_Request):
    """Replaces the customer's preferences. A channel is used only with the customer's consent
    (from their profile) and when turned on here. A null time zone or locale means the
    profile's."""

    channels: ChannelsIn
    quiet_hours: QuietHoursIn
    time_zone: TimeZone | None = None
    locale: Locale | None = None


class ChannelsOut(BaseModel):
    email: bool
    sms: bool


class QuietHoursOut(BaseModel):
    start: str
    end: str


class PreferencesOut(BaseModel):
    customer_id: Identifier
    channels: ChannelsOut
    quiet_hours: QuietHoursOut
    time_zone: str | None
    locale: str | None
    # None while the customer has never chosen: the answer shows the defaults.
    updated_at: datetime | None


class TemplatePreviewOut(BaseModel):
    template: str
    locale: str  # the locale used, after any fallback to English
    subject: str
    text: str
    html: str


class UnsubscribedOut(BaseModel):
    channel: str  # the channel turned off: email
    subscribed: bool


# http or https, a host, and nothing a request line could not carry as it is.
WebhookUrl = Annotated[
    str,
    Field(
        max_length=2000,
        pattern=r"^https?://[A-Za-z0-9.\-\[\]:]+(/[!-~]*)?$",
        examples=["https://partner.example.com/fedelta/events"],
    ),
]


class WebhookIn(_Request):
    url: WebhookUrl


class WebhookOut(BaseModel):
    partner_id: Identifier
    url: str
    created_at: datetime
    # Only in the answer that registers the webhook: kept to sign the calls, never shown again.
    secret: str | None = None


# The wallet's sign-in link: http or https, a host, and printable ASCII; web makes it from its
# public URL and a random token.
SignInUrl = Annotated[
    str,
    Field(
        max_length=500,
        pattern=r"^https?://[A-Za-z0-9.\-\[\]:]+(/[!-~]*)?$",
        examples=["https://wallet.example.com/wallet/sign-in/3q2-7wEjdD0Ih0YlYZtfrg"],
    ),
]


class SignInLinkIn(_Request):
    """A one-time sign-in link to email the member now. It is a secret: stored sealed while
    the message waits, removed once it is sent (or not), never logged nor in any event."""

    url: SignInUrl
    expires_at: bounds.InstantIn


class SignInLinkOut(BaseModel):
    notification_id: str


class ContactsOut(BaseModel):
    """The members whose contact email is the address asked about (any case), in id order."""

    customer_ids: list[str]
