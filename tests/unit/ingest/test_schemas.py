"""What a POS may send: parsing, normalisation and the fingerprint of a request."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from decimal import Decimal
from unittest import mock

import pytest
from pydantic import ValidationError

from services.ingest.api.schemas import (
    CustomerPatchIn,
    EnrolmentIn,
    PartnerIn,
    PurchaseIn,
    RefundIn,
)
from services.ingest.domain.model import request_hash
from services.ingest.settings import IngestSettings
from shared.bounds import MAX_AMOUNT

PURCHASE = {
    "purchase_id": "p-1",
    "customer_id": "c-1",
    "occurred_at": "2026-11-22T10:15:00Z",
    "currency": "EUR",
    "total": "49.99",
}


def parse_purchase(**changes: object) -> PurchaseIn:
    return PurchaseIn.model_validate_json(json.dumps({**PURCHASE, **changes}))


def fingerprint(purchase: PurchaseIn) -> str:
    return request_hash(purchase.model_dump(mode="json"))


class TestPurchaseIn:
    def test_a_total_is_a_decimal_string_kept_in_cents(self) -> None:
        assert parse_purchase(total="49.99").total == Decimal("49.99")
        assert str(parse_purchase(total="49.9").total) == "49.90"
        assert parse_purchase(total="100000.00").total == MAX_AMOUNT

    @pytest.mark.parametrize(
        "total",
        ["0", "0.00", "-1", "49.999", "NaN", "abc", None, "100000.01", "999999999999.99"],
    )
    def test_a_total_must_be_positive_with_two_decimals_at_most(self, total: object) -> None:
        with pytest.raises(ValidationError):
            parse_purchase(total=total)

    @pytest.mark.parametrize(
        "total",
        ["\u0663", "1_000", " 5 ", "5 ", "+5", "1e2", "1E2", "5.", ".5", "0x10", "Infinity"],
    )
    def test_a_total_is_refused_in_any_other_spelling(self, total: str) -> None:
        with pytest.raises(ValidationError, match="must be written like"):
            parse_purchase(total=total)

    @pytest.mark.parametrize("total", [49.99, 5, True])
    def test_a_total_as_a_json_number_is_refused(self, total: object) -> None:
        # Money is a string on the wire: a JSON number passes through binary floats.
        with pytest.raises(ValidationError, match="must be a string"):
            parse_purchase(total=total)

    def test_a_time_without_a_zone_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="timezone"):
            parse_purchase(occurred_at="2026-11-22T10:15:00")

    @pytest.mark.parametrize(
        "occurred_at", ["1700000000", 1700000000, 1700000000.5, "2026-11-22", "2026-11-22 10:15Z"]
    )
    def test_a_time_is_only_an_rfc_3339_string(self, occurred_at: object) -> None:
        with pytest.raises(ValidationError, match="RFC 3339"):
            parse_purchase(occurred_at=occurred_at)

    @pytest.mark.parametrize(
        "occurred_at",
        [
            "0001-01-01T00:00:00+01:00",  # converting to UTC overflows: was a 500
            "9999-12-31T23:59:59-01:00",  # the same, at the other end
            "0001-01-01T00:00:00Z",  # stored as -infinity by points: broke the balance
            "1999-12-31T23:59:59Z",
            "3000-01-01T00:00:00Z",
        ],
    )
    def test_a_time_outside_the_years_2000_to_2999_is_refused(self, occurred_at: str) -> None:
        with pytest.raises(ValidationError, match="within the years 2000-2999"):
            parse_purchase(occurred_at=occurred_at)

    @pytest.mark.parametrize(
        ("field", "value"),
        [("sku", "latte\x00"), ("category", "cof\x00fee"), ("sku", "a\x85b"), ("sku", "x\ny")],
    )
    def test_item_text_with_control_characters_is_refused(self, field: str, value: str) -> None:
        item = {"sku": "latte", "quantity": "1", "unit_price": "3.50", field: value}
        with pytest.raises(ValidationError, match="should match pattern"):
            parse_purchase(items=[item])

    @pytest.mark.parametrize(
        ("quantity", "unit_price"),
        [("10000.001", "1"), ("10001", "1"), ("1", "100000.01"), ("1e2", "1"), (2.5, "1")],
    )
    def test_items_are_bounded(self, quantity: object, unit_price: str) -> None:
        with pytest.raises(ValidationError):
            parse_purchase(items=[{"sku": "x", "quantity": quantity, "unit_price": unit_price}])

    def test_a_store_id_is_an_identifier(self) -> None:
        with pytest.raises(ValidationError):
            parse_purchase(store_id="store\x001")

    def test_times_are_kept_in_utc(self) -> None:
        purchase = parse_purchase(occurred_at="2026-11-22T12:15:00+02:00")
        assert purchase.occurred_at == datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
        assert purchase.occurred_at.utcoffset() is not None

    def test_the_partner_id_cannot_come_from_the_body(self) -> None:
        with pytest.raises(ValidationError, match="partner_id"):
            parse_purchase(partner_id="someone-else")

    @pytest.mark.parametrize("currency", ["eur", "EURO", ""])
    def test_a_currency_is_three_capital_letters(self, currency: str) -> None:
        with pytest.raises(ValidationError):
            parse_purchase(currency=currency)

    @pytest.mark.parametrize("purchase_id", ["", "has space", "a/b", "x" * 65])
    def test_ids_are_short_and_safe_in_paths_and_keys(self, purchase_id: str) -> None:
        with pytest.raises(ValidationError):
            parse_purchase(purchase_id=purchase_id)

    def test_the_same_purchase_written_differently_has_the_same_fingerprint(self) -> None:
        compact = PurchaseIn.model_validate_json(json.dumps(PURCHASE, separators=(",", ":")))
        spaced = PurchaseIn.model_validate_json(
            json.dumps(dict(reversed(list(PURCHASE.items()))), indent=4)
        )
        as_numbers = parse_purchase(
            total="49.99", occurred_at="2026-11-22T11:15:00+01:00", store_id=None
        )
        assert fingerprint(compact) == fingerprint(spaced) == fingerprint(as_numbers)

    def test_another_purchase_under_the_same_id_has_another_fingerprint(self) -> None:
        assert fingerprint(parse_purchase()) != fingerprint(parse_purchase(total="49.98"))
        assert fingerprint(parse_purchase()) != fingerprint(parse_purchase(store_id="s-1"))

    def test_items_keep_their_decimal_quantities_and_prices(self) -> None:
        purchase = parse_purchase(
            items=[{"sku": "coffee", "category": "drinks", "quantity": "0.5", "unit_price": "3"}]
        )
        assert purchase.items is not None
        assert purchase.items[0].quantity == Decimal("0.5")
        assert str(purchase.items[0].unit_price) == "3.00"


class TestEnrolmentIn:
    def test_defaults_are_english_utc_and_no_consent(self) -> None:
        enrolment = EnrolmentIn.model_validate({"customer_id": "c-1"})
        assert (enrolment.locale, enrolment.time_zone) == ("en", "UTC")
        assert (enrolment.consent.email, enrolment.consent.sms) == (False, False)

    def test_an_unknown_time_zone_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="unknown time zone"):
            EnrolmentIn.model_validate({"customer_id": "c-1", "time_zone": "Mars/Olympus"})
        assert (
            EnrolmentIn.model_validate(
                {"customer_id": "c-1", "time_zone": "Europe/Helsinki"}
            ).time_zone
            == "Europe/Helsinki"
        )

    def test_phone_numbers_are_kept_in_international_form(self) -> None:
        enrolment = EnrolmentIn.model_validate({"customer_id": "c-1", "phone": "+358 40 123-4567"})
        assert enrolment.phone == "+358401234567"
        with pytest.raises(ValidationError, match="international"):
            EnrolmentIn.model_validate({"customer_id": "c-1", "phone": "040 1234567"})

    def test_an_email_needs_an_at_and_a_domain(self) -> None:
        with pytest.raises(ValidationError):
            EnrolmentIn.model_validate({"customer_id": "c-1", "email": "not-an-email"})

    @pytest.mark.parametrize("email", ["ada\x00@example.com", "ada@exa\x7fmple.com"])
    def test_an_email_with_control_characters_is_refused(self, email: str) -> None:
        with pytest.raises(ValidationError):
            EnrolmentIn.model_validate({"customer_id": "c-1", "email": email})

    def test_a_time_zone_with_a_nul_is_refused(self) -> None:
        with pytest.raises(ValidationError):
            EnrolmentIn.model_validate({"customer_id": "c-1", "time_zone": "Europe/Rome\x00"})


class TestPartnerIn:
    @pytest.mark.parametrize("name", ["Caf\x00e", "tab\there", "\x9b"])
    def test_a_name_with_control_characters_is_refused(self, name: str) -> None:
        with pytest.raises(ValidationError):
            PartnerIn.model_validate({"name": name})

    def test_a_name_may_be_any_printable_text(self) -> None:
        assert PartnerIn.model_validate({"name": "Caffè Ñandú 東京"}).name == "Caffè Ñandú 東京"


class TestCustomerPatchIn:
    def test_only_the_fields_sent_are_changes(self) -> None:
        patch = CustomerPatchIn.model_validate_json(
            b'{"locale": "it", "phone": null, "consent": {"sms": true}}'
        )
        assert patch.changes() == {"locale": "it", "phone": None, "consent_sms": True}

    def test_an_empty_patch_changes_nothing(self) -> None:
        assert CustomerPatchIn.model_validate({}).changes() == {}


class TestRefundIn:
    def test_a_refund_is_bounded_like_a_purchase(self) -> None:
        with pytest.raises(ValidationError):
            RefundIn.model_validate(
                {"refund_id": "r-1", "amount": "5", "occurred_at": "0001-01-01T00:00:00+01:00"}
            )
        with pytest.raises(ValidationError):
            RefundIn.model_validate(
                {"refund_id": "r-1", "amount": 5, "occurred_at": "2026-11-22T10:15:00Z"}
            )

    def test_an_amount_is_positive_money(self) -> None:
        refund = RefundIn.model_validate(
            {"refund_id": "r-1", "amount": "5", "occurred_at": "2026-11-22T10:15:00Z"}
        )
        assert str(refund.amount) == "5.00"
        with pytest.raises(ValidationError):
            RefundIn.model_validate(
                {"refund_id": "r-1", "amount": "0", "occurred_at": "2026-11-22T10:15:00Z"}
            )


class TestSettings:
    required = {
        "FEDELTA_INGEST_DATABASE_URL": "postgresql+asyncpg://ingest:ingest@127.0.0.1:5432/x",
        "FEDELTA_INGEST_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
        "FEDELTA_INGEST_ADMIN_TOKEN_SHA256": "0123456789abcdef" * 4,
    }

    def test_defaults(self) -> None:
        with mock.patch.dict(os.environ, self.required):
            settings = IngestSettings()
        assert settings.port == 8080
        assert settings.currency == "EUR"
        assert settings.max_clock_skew_seconds == 300
        assert settings.max_purchase_age_days == 30
        assert settings.max_body_bytes == 65536

    def test_the_program_currency_is_configurable(self) -> None:
        with mock.patch.dict(os.environ, {**self.required, "FEDELTA_INGEST_CURRENCY": "SEK"}):
            assert IngestSettings().currency == "SEK"
        with (
            mock.patch.dict(os.environ, {**self.required, "FEDELTA_INGEST_CURRENCY": "kr"}),
            pytest.raises(ValidationError),
        ):
            IngestSettings()
