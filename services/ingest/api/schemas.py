"""What the ingest API takes and answers; separate from the domain so either can change alone."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import WithJsonSchema

from services.ingest.domain.till import (
    COUPON_CODE_MAX_LENGTH,
    COUPON_CODE_MIN_LENGTH,
    COUPON_CODE_PATTERN,
)
from shared import bounds
from shared.messaging import events


def _known_time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Rome"
        ) from None
    return name


_PHONE_SEPARATORS = re.compile(r"[ ()\-.]")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


def _international_phone(number: str) -> str:
    compact = _PHONE_SEPARATORS.sub("", number)
    if not _E164.fullmatch(compact):
        raise ValueError("phone must be in international format, e.g. +358401234567")
    return compact


# The bounds are shared with the event models (shared/bounds.py): what is accepted here,
# every service can store and serve. Money is a string of the documented form only.
Identifier = bounds.Identifier
Amount = bounds.AmountIn
UnitPrice = bounds.UnitPriceIn
Quantity = bounds.QuantityIn
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])]
Email = bounds.Email
# The pattern documents exactly what `_international_phone` accepts (separators anywhere);
# the validator enforces it, with a message that says what to send.
_PHONE_DOCUMENTED = r"^[ ().-]*\+[ ().-]*[1-9]([ ().-]*[0-9]){6,14}[ ().-]*$"
Phone = Annotated[
    str,
    Field(
        max_length=32,
        json_schema_extra={"pattern": _PHONE_DOCUMENTED, "examples": ["+358401234567"]},
    ),
    AfterValidator(_international_phone),
]
Locale = Annotated[
    str, Field(max_length=35, pattern=r"^[A-Za-z]{2,3}([_\-][A-Za-z0-9]{2,8})*$", examples=["en"])
]
TimeZone = Annotated[
    str,
    Field(max_length=64, pattern=bounds.PRINTABLE_PATTERN, examples=["Europe/Helsinki"]),
    AfterValidator(_known_time_zone),
]
Label = bounds.Label
Instant = bounds.InstantIn
_CALENDAR_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _calendar_date_text(value: Any) -> Any:
    if not isinstance(value, str) or not _CALENDAR_DATE.fullmatch(value):
        raise ValueError("must be a calendar date written YYYY-MM-DD, e.g. 1990-04-23")
    return value


# A calendar date as YYYY-MM-DD only (not a timestamp); from 1900-01-01 to today, which the
# use cases check against the clock (domain.model.ensure_birthday_in_range).
Birthday = Annotated[
    date,
    BeforeValidator(_calendar_date_text),
    WithJsonSchema(
        {"type": "string", "format": "date", "examples": ["1990-04-23"]}, mode="validation"
    ),
]


class Request(BaseModel):
    # Unknown fields are refused: a misspelt field must not be silently ignored, and the
    # partner id must never come from the body.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConsentIn(Request):
    email: bool = False
    sms: bool = False


class ConsentPutIn(Request):
    """The member's consent as they set it in the wallet: both channels, strictly true or
    false (a "yes" or a 1 is a 422, not a consent)."""

    email: StrictBool
    sms: StrictBool


class ConsentOut(BaseModel):
    """A profile's consent and the version it is at (one more per change)."""

    email: bool
    sms: bool
    version: int


class EnrolmentIn(Request):
    customer_id: Identifier
    email: Email | None = None
    phone: Phone | None = None
    locale: Locale = "en"
    time_zone: TimeZone = "UTC"
    consent: ConsentIn = ConsentIn()
    referred_by: Identifier | None = None
    birthday: Birthday | None = None


class ConsentPatchIn(Request):
    email: bool | None = None
    sms: bool | None = None


class CustomerPatchIn(Request):
    """A JSON merge patch: absent fields stay, `null` removes an email or a phone."""

    email: Email | None = None
    phone: Phone | None = None
    locale: Locale | None = None
    time_zone: TimeZone | None = None
    consent: ConsentPatchIn | None = None
    birthday: Birthday | None = None

    def changes(self) -> dict[str, Any]:
        """The fields sent, named as in the domain's profile."""
        sent: dict[str, Any] = {
            name: getattr(self, name)
            for name in ("email", "phone", "locale", "time_zone", "birthday")
            if name in self.model_fields_set
        }
        if "consent" in self.model_fields_set:
            if self.consent is None:
                sent["consent_email"] = sent["consent_sms"] = None
            else:
                for channel in ("email", "sms"):
                    if channel in self.consent.model_fields_set:
                        sent[f"consent_{channel}"] = getattr(self.consent, channel)
        return sent


class ItemIn(Request):
    sku: Label
    category: Label | None = None
    quantity: Quantity
    unit_price: UnitPrice


class PurchaseIn(Request):
    purchase_id: Identifier
    customer_id: Identifier
    store_id: Identifier | None = None
    occurred_at: Instant
    currency: Currency
    total: Amount
    items: Annotated[list[ItemIn], Field(max_length=bounds.MAX_ITEMS)] | None = None
    # Points spent on this purchase at the till (points as tender): the redemption's id.
    redemption_id: Identifier | None = None


class RefundIn(Request):
    refund_id: Identifier
    amount: Amount
    occurred_at: Instant


class AcceptedOut(BaseModel):
    event_id: str


class PurchaseAcceptedOut(AcceptedOut):
    """A purchase's answer: with `wallet_url` when ingest is configured for receipt links
    (absent otherwise, never null)."""

    wallet_url: str | None = Field(
        default=None,
        description=(
            "The member wallet's link for this purchase's receipt, to print as a QR code: "
            "it signs the member in for 30 days"
        ),
        examples=["http://127.0.0.1:8086/wallet/receipt?c=c-1&p=p-1&e=1767225600&s=9f2c..."],
    )


# A partner's calls per second for the whole ingest instance (domain/rate_limits.py).
RateLimit = Annotated[float, Field(strict=True, gt=0, le=100_000, examples=[50])]


class PartnerIn(Request):
    name: Label
    partner_id: Identifier | None = None
    # None: the default (FEDELTA_INGEST_PARTNER_RATE_LIMIT_PER_SECOND).
    rate_limit_per_second: RateLimit | None = None


class PartnerRateLimitIn(Request):
    """The partner's calls per second; null: the default from settings."""

    rate_limit_per_second: RateLimit | None


class PartnerOut(BaseModel):
    """A partner without its credentials: those are never shown again."""

    partner_id: str
    name: str
    created_at: datetime
    active: bool
    # Its own limit of calls per second; null: the default from settings.
    rate_limit_per_second: float | None = None


class PartnerListOut(BaseModel):
    items: list[PartnerOut]


class PartnerCreatedOut(BaseModel):
    """Shown once: the key is stored hashed and cannot be shown again."""

    partner_id: str
    name: str
    api_key: str
    signing_secret: str


# --- Till calls, relayed to points (usecases/till.py) -------------------------------------

# A whole number of points, as a JSON integer only (not "5", 5.0 or true).
SpendPoints = Annotated[int, Field(strict=True, ge=1, le=bounds.MAX_POINTS)]
CouponCode = Annotated[
    str,
    Field(
        min_length=COUPON_CODE_MIN_LENGTH,
        max_length=COUPON_CODE_MAX_LENGTH,
        pattern=COUPON_CODE_PATTERN,
        examples=["K7QM-4XPD-9TRB"],
    ),
]


class TillRedemptionIn(Request):
    """A free-form redemption `{"points", "reward"}`, or a reward of the catalogue
    `{"reward_id"}` (which issues a coupon); `store_id`: the store honouring it."""

    points: SpendPoints | None = None
    reward: Label | None = None
    reward_id: Identifier | None = None
    store_id: Identifier | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> TillRedemptionIn:
        free_form = self.points is not None or self.reward is not None
        if self.reward_id is not None and free_form:
            raise ValueError("send either reward_id, or points and reward; not both")
        if self.reward_id is None and (self.points is None or self.reward is None):
            raise ValueError(
                "send points and reward (a free-form redemption) or reward_id (a reward of "
                "the catalogue)"
            )
        return self

    def for_points(self) -> dict[str, Any]:
        """The body points takes (the store goes as a header)."""
        if self.reward_id is not None:
            return {"reward_id": self.reward_id}
        return {"points": self.points, "reward": self.reward}


class TillHoldIn(Request):
    """Points reserved before the payment completes; `store_id`: the store placing it."""

    points: SpendPoints
    reward: Label
    store_id: Identifier | None = None

    def for_points(self) -> dict[str, Any]:
        return {"points": self.points, "reward": self.reward}


class CouponRedeemIn(Request):
    """Where and on what a coupon is used: both optional."""

    store_id: Identifier | None = None
    purchase_id: Identifier | None = None

    def for_points(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


# --- Member imports (usecases/imports.py, docs/import.md) ---------------------------------

# Rows per call: the command sends batches of at most this many.
MAX_IMPORT_ROWS = 500
TierName = Literal["bronze", "silver", "gold", "platinum"]
# An opening balance: a whole number of points, as a JSON integer only; 0 means no lot.
OpeningPoints = Annotated[int, Field(strict=True, ge=0, le=bounds.MAX_POINTS)]
LineNumber = Annotated[int, Field(strict=True, ge=1, le=2**62)]


class ImportRowIn(Request):
    """One member of an import, its `line` aside: the bounds of an enrolment's fields, and
    the opening balance and tier (checked against the clock by domain.imports)."""

    customer_id: Identifier
    email: Email | None = None
    phone: Phone | None = None
    locale: Locale = "en"
    time_zone: TimeZone = "UTC"
    consent_email: bool = False
    consent_sms: bool = False
    birthday: Birthday | None = None
    points: OpeningPoints | None = None
    points_expire_at: Instant | None = None
    tier: TierName | None = None
    tier_since: Instant | None = None


IMPORT_COLUMNS = tuple(ImportRowIn.model_fields)


class ImportRowEnvelope(BaseModel):
    """A row as sent: its line in the file, the rest checked one row at a time so that a
    refused row does not refuse the others (`ImportRowIn`)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    line: LineNumber

    def fields(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class MembersImportIn(Request):
    partner_id: Identifier
    # The welcome bonus and the welcome message for the imported members (`--welcome`).
    welcome: Annotated[bool, Field(strict=True)] = False
    rows: Annotated[list[ImportRowEnvelope], Field(min_length=1, max_length=MAX_IMPORT_ROWS)]


class ImportResultOut(BaseModel):
    line: int
    customer_id: str | None
    outcome: Literal["imported", "exists", "refused"]
    reason: str | None = None


class MembersImportOut(BaseModel):
    results: list[ImportResultOut]


# What a refused row's reason says for a field whose spelling is wrong (pydantic's own words
# would quote a regular expression).
_SPELLING = {
    "customer_id": "1 to 64 letters, digits and . _ : - (starting with a letter or digit)",
    "email": "not an email address",
    "locale": "not a locale such as en or fi-FI",
    "time_zone": "not a time zone name",
    "points_expire_at": "must be an RFC 3339 date-time with an offset",
    "tier_since": "must be an RFC 3339 date-time with an offset",
}


def import_row(fields: dict[str, Any]) -> ImportRowIn | str:
    """The row within the bounds, or why not: the first field that is wrong and what is wrong
    with it (never its value, which may be personal data)."""
    try:
        return ImportRowIn.model_validate(fields)
    except ValidationError as error:
        return _reason(error.errors(include_url=False, include_input=False)[0])


def _reason(error: Any) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "row"
    kind = error["type"]
    if kind == "missing":
        return f"{field}: required"
    if kind == "extra_forbidden":
        return f"{field}: not a column of an import (the columns: {', '.join(IMPORT_COLUMNS)})"
    if kind == "string_pattern_mismatch" and field in _SPELLING:
        return f"{field}: {_SPELLING[field]}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{field}: {message}"


# Members' feedback -----------------------------------------------------


class FeedbackIn(Request):
    """A member's feedback: `score` 0 to 10 for `nps` (required), 1 to 5 for a `review`, 0 to
    10 for a `survey`; `comment` printable, at most 1,000 characters (kept only by engagement,
    erased with the member); `purchase_id` one this partner reported for the member;
    `store_id` the store it is about (the NPS report groups by it)."""

    feedback_id: Identifier
    customer_id: Identifier
    purchase_id: Identifier | None = None
    store_id: Identifier | None = None
    kind: Literal["review", "survey", "nps"]
    score: int | None = Field(default=None, strict=True, ge=0, le=10, validate_default=True)
    comment: events.FeedbackComment | None = None

    @field_validator("score")
    @classmethod
    def _score_fits_kind(cls, score: int | None, info: ValidationInfo) -> int | None:
        kind = info.data.get("kind")
        if kind is None:  # the kind itself is invalid: its own error says so
            return score
        low, high = events.FEEDBACK_SCORES[kind]
        if score is None and kind == "nps":
            raise ValueError("an nps feedback needs a score, 0 to 10")
        if score is not None and not low <= score <= high:
            raise ValueError(f"a {kind} score is {low} to {high}")
        return score
