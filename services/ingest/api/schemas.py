"""What the ingest API takes and answers; separate from the domain so either can change alone."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from services.ingest.domain.till import (
    COUPON_CODE_MAX_LENGTH,
    COUPON_CODE_MIN_LENGTH,
    COUPON_CODE_PATTERN,
)
from shared import bounds


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


class Request(BaseModel):
    # Unknown fields are refused: a misspelt field must not be silently ignored, and the
    # partner id must never come from the body.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConsentIn(Request):
    email: bool = False
    sms: bool = False


class EnrolmentIn(Request):
    customer_id: Identifier
    email: Email | None = None
    phone: Phone | None = None
    locale: Locale = "en"
    time_zone: TimeZone = "UTC"
    consent: ConsentIn = ConsentIn()
    referred_by: Identifier | None = None


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

    def changes(self) -> dict[str, Any]:
        """The fields sent, named as in the domain's profile."""
        sent: dict[str, Any] = {
            name: getattr(self, name)
            for name in ("email", "phone", "locale", "time_zone")
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


class PartnerIn(Request):
    name: Label
    partner_id: Identifier | None = None


class PartnerOut(BaseModel):
    """A partner without its credentials: those are never shown again."""

    partner_id: str
    name: str
    created_at: datetime
    active: bool


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
