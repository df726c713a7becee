"""Ingest's pure rules: refunds, request fingerprints, what a purchase may claim."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.domain.model import (
    CENT,
    Accepted,
    CustomerProfile,
    LineItem,
    RefundTooLarge,
    RuleViolation,
    ensure_items_have_value,
    ensure_not_in_future,
    ensure_not_self_referral,
    ensure_program_currency,
    ensure_refund_after_purchase,
    erased,
    hash_api_key,
    is_retry,
    money,
    new_credentials,
    patched,
    refundable_remaining,
    refunded_after,
    request_hash,
)

NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
SKEW = timedelta(seconds=300)

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2)


class TestRefunds:
    def test_remaining_is_what_is_left_of_the_total(self) -> None:
        assert refundable_remaining(Decimal("49.99"), Decimal("10.00")) == Decimal("39.99")
        assert refundable_remaining(Decimal("49.99"), Decimal("49.99")) == Decimal("0.00")

    def test_a_refund_adds_to_what_was_refunded(self) -> None:
        assert refunded_after(Decimal("50.00"), Decimal("20.00"), Decimal("30.00")) == Decimal(
            "50.00"
        )

    def test_a_refund_beyond_the_remaining_amount_is_refused_and_says_how_much_remains(
        self,
    ) -> None:
        with pytest.raises(RefundTooLarge) as refused:
            refunded_after(Decimal("50.00"), Decimal("20.00"), Decimal("30.01"))
        assert refused.value.remaining == Decimal("30.00")
        assert "30.00" in str(refused.value)
        assert refused.value.slug == "refund-exceeds-remaining"

    @pytest.mark.parametrize("amount", [Decimal(0), Decimal("-1.00")])
    def test_a_refund_must_be_positive(self, amount: Decimal) -> None:
        with pytest.raises(RuleViolation):
            refunded_after(Decimal("50.00"), Decimal(0), amount)

    @given(total=amounts, attempts=st.lists(amounts, max_size=30))
    def test_refunds_never_exceed_the_total_whatever_the_sequence(
        self, total: Decimal, attempts: list[Decimal]
    ) -> None:
        refunded = Decimal(0)
        for amount in attempts:
            before = refunded
            try:
                refunded = refunded_after(total, refunded, amount)
            except RefundTooLarge as refused:
                assert amount > refused.remaining == total - before
                assert refunded == before
            else:
                assert refunded == before + amount
            assert Decimal(0) <= refunded <= total

    @given(total=amounts, cuts=st.lists(st.integers(min_value=1, max_value=99), max_size=5))
    def test_partial_refunds_that_add_up_to_the_total_are_all_accepted(
        self, total: Decimal, cuts: list[int]
    ) -> None:
        parts: list[Decimal] = []
        left = total
        for percent in cuts:
            part = money(left * percent / 100)
            if Decimal(0) < part < left:
                parts.append(part)
                left -= part
        parts.append(left)
        refunded = Decimal(0)
        for part in parts:
            refunded = refunded_after(total, refunded, part)
        assert refunded == total
        assert refundable_remaining(total, refunded) == 0

    def test_a_refund_cannot_precede_its_purchase(self) -> None:
        ensure_refund_after_purchase(NOW, NOW)
        with pytest.raises(RuleViolation):
            ensure_refund_after_purchase(NOW - timedelta(seconds=1), NOW)


class TestRequestHash:
    def test_key_order_does_not_matter(self) -> None:
        assert request_hash({"a": 1, "b": {"c": "x", "d": None}}) == request_hash(
            {"b": {"d": None, "c": "x"}, "a": 1}
        )

    @given(
        st.dictionaries(
            st.text(max_size=8),
            st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
            max_size=8,
        )
    )
    def test_any_order_of_the_same_fields_gives_the_same_hash(
        self, document: dict[str, object]
    ) -> None:
        reversed_order = dict(reversed(list(document.items())))
        assert request_hash(reversed_order) == request_hash(document)

    def test_another_value_gives_another_hash(self) -> None:
        assert request_hash({"total": "49.99"}) != request_hash({"total": "49.90"})
        assert request_hash({"store_id": None}) != request_hash({"store_id": "s1"})

    def test_it_is_a_sha256_hex_digest(self) -> None:
        assert len(request_hash({})) == 64
        assert request_hash({}) == hashlib.sha256(b"{}").hexdigest()

    def test_a_retry_is_recognised_by_its_hash(self) -> None:
        previous = Accepted(request_hash=request_hash({"a": 1}), event_id="e1")
        assert is_retry(previous, request_hash({"a": 1}))
        assert not is_retry(previous, request_hash({"a": 2}))


class TestPurchaseRules:
    def test_only_the_program_currency_is_accepted(self) -> None:
        ensure_program_currency("EUR", "EUR")
        with pytest.raises(RuleViolation, match="program currency is EUR"):
            ensure_program_currency("USD", "EUR")

    def test_items_must_be_worth_something(self) -> None:
        ensure_items_have_value([LineItem(Decimal(1), Decimal("0.00")), LineItem(Decimal(2), CENT)])
        with pytest.raises(RuleViolation, match="worth nothing"):
            ensure_items_have_value([LineItem(Decimal(3), Decimal("0.00"))])
        with pytest.raises(RuleViolation):
            ensure_items_have_value([])

    def test_a_purchase_may_be_dated_a_little_ahead_for_clock_skew_but_no_more(self) -> None:
        ensure_not_in_future(NOW - timedelta(days=30), NOW, SKEW, what="the purchase's")
        ensure_not_in_future(NOW + SKEW, NOW, SKEW, what="the purchase's")
        with pytest.raises(RuleViolation, match="in the future"):
            ensure_not_in_future(
                NOW + SKEW + timedelta(seconds=1), NOW, SKEW, what="the purchase's"
            )

    def test_money_is_kept_in_cents(self) -> None:
        assert str(money(Decimal("49.9"))) == "49.90"
        assert str(money(Decimal("1E+2"))) == "100.00"


class TestProfiles:
    profile = CustomerProfile(
        customer_id="c1",
        partner_id="p1",
        enrolled_at=NOW,
        locale="fi",
        time_zone="Europe/Helsinki",
        email="ada@example.com",
        phone="+358401234567",
        consent_email=True,
        consent_sms=False,
        referred_by=None,
    )

    def test_a_patch_changes_only_the_fields_it_names(self) -> None:
        updated = patched(self.profile, {"locale": "it", "consent_sms": True})
        assert updated.locale == "it"
        assert updated.consent_sms is True
        assert updated.email == self.profile.email
        assert updated.consent_email is True
        assert updated.enrolled_at == NOW

    def test_a_patch_may_remove_a_contact(self) -> None:
        assert patched(self.profile, {"phone": None}).phone is None

    @pytest.mark.parametrize("field", ["locale", "time_zone", "consent_email", "consent_sms"])
    def test_a_patch_cannot_remove_what_every_profile_has(self, field: str) -> None:
        with pytest.raises(RuleViolation, match=field):
            patched(self.profile, {field: None})

    def test_a_patch_cannot_touch_identity_fields(self) -> None:
        with pytest.raises(RuleViolation, match="partner_id"):
            patched(self.profile, {"partner_id": "p2"})

    def test_nobody_refers_themselves(self) -> None:
        ensure_not_self_referral("c1", None)
        ensure_not_self_referral("c1", "c2")
        with pytest.raises(RuleViolation):
            ensure_not_self_referral("c1", "c1")


class TestCredentials:
    def test_api_keys_are_stored_as_their_sha256(self) -> None:
        assert hash_api_key("key") == hashlib.sha256(b"key").hexdigest()

    def test_credentials_are_long_random_and_different_each_time(self) -> None:
        first, second = new_credentials(), new_credentials()
        assert len(first.api_key) >= 43  # 32 random bytes, base64url
        assert first.api_key != second.api_key
        assert first.signing_secret != second.signing_secret
        assert first.api_key != first.signing_secret


def test_an_erased_profile_keeps_only_the_id_the_partner_and_neutral_settings() -> None:
    profile = CustomerProfile(
        customer_id="c1",
        partner_id="p1",
        enrolled_at=NOW,
        locale="fi",
        time_zone="Europe/Helsinki",
        email="ada@example.com",
        phone="+358401234567",
        consent_email=True,
        consent_sms=True,
        referred_by="c0",
        version=3,
    )
    gone = erased(profile, NOW + SKEW)
    assert (gone.customer_id, gone.partner_id, gone.enrolled_at, gone.version) == (
        "c1",
        "p1",
        NOW,
        3,
    )
    assert (gone.email, gone.phone, gone.consent_email, gone.consent_sms) == (
        None,
        None,
        False,
        False,
    )
    assert (gone.locale, gone.time_zone, gone.referred_by) == ("en", "UTC", None)
    assert gone.erased_at == NOW + SKEW
