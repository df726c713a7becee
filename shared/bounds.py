"""The bounds of every value the product accepts, defined once.

Ingest's request models (strict about spelling) and the event payload models (tolerant about
spelling, strict about range) use these same types, so that whatever ingest accepts every
service can store and serve, and an event outside them is a validation failure that the
consumer dead-letters instead of a crash further down.

The numbers, and why:

- An amount (a purchase total, a refund) is positive, in cents, at most 100,000.00. Points
  are 32-bit integers in points' ledger (at most 2,147,483,647): at 1 point per unit, the
  platinum multiplier 2.0 and campaign multipliers whose product stays within
  `MAX_CAMPAIGN_MULTIPLIER` (100), one purchase earns at most 20,000,000 points, a hundred
  times below the limit; a refund reverses at most what its purchase earned.
- A line item: a quantity of at most 10,000 with 3 decimals, a unit price of at most
  100,000.00 and 500 items, so sum(quantity * unit_price) <= 5 * 10^11 fits NUMERIC(14, 2)
  and a Decimal without rounding; points are shared out of the total, never of the items.
- An instant has an explicit offset and falls within the years 2000-2999 in UTC, so that
  converting it (or adding a validity of years to it) never overflows; ingest further keeps
  a reported purchase within `max_purchase_age_days` in the past and the clock skew ahead.
- Free text (sku, category, names, reasons, store ids) has no control characters (C0, DEL,
  C1 — NUL included: PostgreSQL cannot store it) and a maximum length.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Final

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, PlainSerializer
from pydantic.json_schema import WithJsonSchema

MAX_AMOUNT: Final = Decimal("100000.00")
MAX_UNIT_PRICE: Final = Decimal("100000.00")
MAX_QUANTITY: Final = Decimal("10000")
MAX_ITEMS: Final = 500
# What points' 32-bit ledger column can hold, and the largest product of campaign
# multipliers a program may configure for it never to be reached (see the module's text).
MAX_POINTS: Final = 2**31 - 1
MAX_TIER_MULTIPLIER: Final = Decimal("2.0")
MAX_CAMPAIGN_MULTIPLIER: Final = Decimal("100")
EARLIEST_YEAR: Final = 2000
LATEST_YEAR: Final = 2999
MAX_ID_LENGTH: Final = 64
MAX_LABEL_LENGTH: Final = 128
MAX_TEXT_LENGTH: Final = 500
MAX_EMAIL_LENGTH: Final = 254

# The spellings accepted at the edge: digits, and a point with one or two decimals. No sign,
# exponent, underscore, space or non-ASCII digit (Python's Decimal takes "٣" and "1_000").
AMOUNT_PATTERN: Final = r"^[0-9]{1,6}(\.[0-9]{1,2})?$"
QUANTITY_PATTERN: Final = r"^[0-9]{1,5}(\.[0-9]{1,3})?$"
# RFC 3339 with an explicit offset: no bare date, no unix seconds, no local time.
INSTANT_PATTERN: Final = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
)
# Ids travel as Kafka keys and in URL paths: no spaces, slashes or personal data like emails.
IDENTIFIER_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$"
# No C0 controls, DEL or C1 controls.
PRINTABLE_PATTERN: Final = r"^[^\x00-\x1f\x7f-\x9f]*$"
_NOT_EMAIL_CHAR = r"[^@\s\x00-\x1f\x7f-\x9f]"
EMAIL_PATTERN: Final = rf"^{_NOT_EMAIL_CHAR}+@{_NOT_EMAIL_CHAR}+\.{_NOT_EMAIL_CHAR}+$"
# What an amount the services compute (sums, gaps) looks like in an answer: it may exceed
# what one purchase may be, and a qualifying spend may be negative.
SIGNED_MONEY_PATTERN: Final = r"^-?[0-9]+\.[0-9]{2}$"

_AMOUNT = re.compile(AMOUNT_PATTERN)
_QUANTITY = re.compile(QUANTITY_PATTERN)
_INSTANT = re.compile(INSTANT_PATTERN)
CENT: Final = Decimal("0.01")


def _exact_decimal(value: Any, spelling: re.Pattern[str], what: str, *, integers: bool) -> Any:
    """A decimal from a string of the documented form only (or, where `integers`, a JSON
    integer); anything else is refused with the form it must take."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, Decimal) and integers:
        text = str(value)  # a JSON number parsed exactly: "1E+2" keeps its exponent
    elif isinstance(value, int) and not isinstance(value, bool) and integers:
        text = str(value)
    else:
        raise ValueError(f"{what} must be a string like {_EXAMPLE[what]!r}")
    if not spelling.fullmatch(text):
        raise ValueError(f"{what} must be written like {_EXAMPLE[what]!r} (digits and a point)")
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise ValueError(f"{what} is not a number") from None


_EXAMPLE = {"an amount": "49.90", "a quantity": "2"}


def _amount_text(value: Any) -> Any:
    return _exact_decimal(value, _AMOUNT, "an amount", integers=False)


def _quantity_text(value: Any) -> Any:
    return _exact_decimal(value, _QUANTITY, "a quantity", integers=True)


def _rfc3339_text(value: Any) -> Any:
    if not isinstance(value, str) or not _INSTANT.fullmatch(value):
        raise ValueError(
            "must be an RFC 3339 date-time with a timezone offset, e.g. 2026-11-22T10:15:00+01:00"
        )
    return value


def utc_within_range(instant: datetime) -> datetime:
    """The instant in UTC; refused when that conversion overflows or leaves the range."""
    try:
        in_utc = instant.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"date-time must fall within the years {EARLIEST_YEAR}-{LATEST_YEAR} in UTC"
        ) from None
    if not EARLIEST_YEAR <= in_utc.year <= LATEST_YEAR:
        raise ValueError(
            f"date-time must fall within the years {EARLIEST_YEAR}-{LATEST_YEAR} in UTC"
        )
    return in_utc


def _in_cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT)


def _as_string(amount: Decimal) -> str:
    return str(amount)


def _as_cents_string(amount: Decimal) -> str:
    return str(amount.quantize(CENT))


_MONEY_OUT = PlainSerializer(_as_string, return_type=str, when_used="json")

# --- Instants ----------------------------------------------------------------------------
# Inside (events): any aware spelling pydantic reads, within the range, kept in UTC.
Instant = Annotated[AwareDatetime, AfterValidator(utc_within_range)]
# At the edge: an RFC 3339 string and nothing else.
InstantIn = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339_text),
    AfterValidator(utc_within_range),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "examples": ["2026-11-22T10:15:00+01:00"]},
        mode="validation",
    ),
]

# --- Money -------------------------------------------------------------------------------
# Inside: a Decimal from a string or a number, in range, in cents, written as a string.
Amount = Annotated[
    Decimal,
    Field(gt=0, le=MAX_AMOUNT, max_digits=8, decimal_places=2),
    AfterValidator(_in_cents),
    _MONEY_OUT,
]
UnitPrice = Annotated[
    Decimal,
    Field(ge=0, le=MAX_UNIT_PRICE, max_digits=8, decimal_places=2),
    AfterValidator(_in_cents),
    _MONEY_OUT,
]
Quantity = Annotated[
    Decimal,
    Field(gt=0, le=MAX_QUANTITY, max_digits=8, decimal_places=3),
    PlainSerializer(_as_string, return_type=str, when_used="json"),
]
_AMOUNT_SCHEMA = {"type": "string", "pattern": AMOUNT_PATTERN, "examples": ["49.90"]}
# At the edge: money only as a JSON string of the documented form (a JSON number would pass
# through a binary float in many clients), so "49.9" and "49.90" are one amount.
AmountIn = Annotated[
    Amount, BeforeValidator(_amount_text), WithJsonSchema(_AMOUNT_SCHEMA, mode="validation")
]
UnitPriceIn = Annotated[
    UnitPrice, BeforeValidator(_amount_text), WithJsonSchema(_AMOUNT_SCHEMA, mode="validation")
]
# A quantity is a count more often than not: a JSON integer is taken as well.
QuantityIn = Annotated[
    Quantity,
    BeforeValidator(_quantity_text),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": QUANTITY_PATTERN, "examples": ["0.5"]},
                {"type": "integer", "minimum": 1, "maximum": int(MAX_QUANTITY)},
            ]
        },
        mode="validation",
    ),
]
# A sum or a gap the services compute: unbounded, signed, in cents, as a string.
MoneyOut = Annotated[
    Decimal,
    PlainSerializer(_as_cents_string, return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "pattern": SIGNED_MONEY_PATTERN, "examples": ["1250.00"]},
        mode="serialization",
    ),
]

# --- Points ------------------------------------------------------------------------------
Points = Annotated[int, Field(ge=-MAX_POINTS - 1, le=MAX_POINTS)]

# --- Ids and text ------------------------------------------------------------------------
Identifier = Annotated[
    str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=IDENTIFIER_PATTERN)
]
Label = Annotated[str, Field(min_length=1, max_length=MAX_LABEL_LENGTH, pattern=PRINTABLE_PATTERN)]
Text = Annotated[str, Field(max_length=MAX_TEXT_LENGTH, pattern=PRINTABLE_PATTERN)]
Email = Annotated[
    str,
    Field(max_length=MAX_EMAIL_LENGTH, pattern=EMAIL_PATTERN, examples=["ada@example.com"]),
]
