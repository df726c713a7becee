"""What the ingest API takes and answers; separate from the domain so either can change alone."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

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
