"""A receipt's wallet link (shared.web.receipt_links): ingest signs the customer, the purchase
and an expiry; web verifies them. Any part changed, another secret or the expiry passed, and
the link opens nothing."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import QueryParams

from shared.bounds import IDENTIFIER_PATTERN
from shared.web.receipt_links import ReceiptLinkError, sign_receipt_link, verify_receipt_link

SECRET = "receipt-secret-0123456789abcdef-0123456789"
NOW = datetime(2026, 12, 6, 21, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(days=30)


def signed(customer_id: str = "c-1", purchase_id: str = "p-1", **kwargs: object) -> dict[str, str]:
    query = sign_receipt_link(SECRET, customer_id, purchase_id, EXPIRES)
    return dict(parse_qsl(query, strict_parsing=True)) | {k: str(v) for k, v in kwargs.items()}


def test_a_signed_link_names_its_customer_and_purchase() -> None:
    query = sign_receipt_link(SECRET, "c-1", "p-1", EXPIRES)
    params = dict(parse_qsl(query))
    assert list(params) == ["c", "p", "e", "s"]
    assert (params["c"], params["p"], params["e"]) == ("c-1", "p-1", str(int(EXPIRES.timestamp())))
    assert len(params["s"]) == 64 and int(params["s"], 16) >= 0
    assert verify_receipt_link(SECRET, params, NOW) == ("c-1", "p-1")


def test_the_query_is_url_encoded_and_verifies_as_a_server_decodes_it() -> None:
    query = sign_receipt_link(SECRET, "member:c.1", "till:7:p-2", EXPIRES)
    assert "c=member%3Ac.1&p=till%3A7%3Ap-2&" in query
    assert verify_receipt_link(SECRET, QueryParams(query), NOW) == ("member:c.1", "till:7:p-2")


@pytest.mark.parametrize(
    "tampered",
    [
        {"c": "c-2"},
        {"p": "p-2"},
        {"e": str(int(EXPIRES.timestamp()) + 86_400)},  # a longer life
        {"s": "0" * 64},
    ],
)
def test_changing_any_part_breaks_the_signature(tampered: dict[str, str]) -> None:
    with pytest.raises(ReceiptLinkError, match="signature"):
        verify_receipt_link(SECRET, signed() | tampered, NOW)


def test_each_flipped_digit_of_the_signature_is_refused() -> None:
    params = signed()
    for index in range(64):
        digit = params["s"][index]
        flipped = params["s"][:index] + ("1" if digit == "0" else "0") + params["s"][index + 1 :]
        with pytest.raises(ReceiptLinkError):
            verify_receipt_link(SECRET, params | {"s": flipped}, NOW)


def test_the_ids_cannot_trade_their_dots() -> None:
    # Joined by dots, c=a.b p=c and c=a p=b.c would be signed alike.
    params = signed("a.b", "c")
    with pytest.raises(ReceiptLinkError):
        verify_receipt_link(SECRET, params | {"c": "a", "p": "b.c"}, NOW)


def test_a_link_expires() -> None:
    params = signed()
    assert verify_receipt_link(SECRET, params, EXPIRES - timedelta(seconds=1)) == ("c-1", "p-1")
    for later in (EXPIRES, EXPIRES + timedelta(days=1)):
        with pytest.raises(ReceiptLinkError, match="expired"):
            verify_receipt_link(SECRET, params, later)


def test_another_secret_verifies_nothing() -> None:
    with pytest.raises(ReceiptLinkError, match="signature"):
        verify_receipt_link(SECRET + "!", signed(), NOW)


@pytest.mark.parametrize(
    "changes",
    [
        {"c": None},
        {"p": None},
        {"e": None},
        {"s": None},
        {"c": "c 1"},
        {"p": "x" * 65},
        {"c": "c-1\n"},
        {"e": "-1"},
        {"e": "1" * 13},
        {"e": "1e9"},
        {"s": "ab" * 31},
        {"s": "zz" * 32},
    ],
)
def test_a_malformed_link_is_refused_without_quoting_it(changes: dict[str, str | None]) -> None:
    params = {k: v for k, v in (signed() | changes).items() if v is not None}
    with pytest.raises(ReceiptLinkError) as refused:
        verify_receipt_link(SECRET, params, NOW)
    for value in changes.values():
        if value:
            assert value not in str(refused.value)


def test_the_signature_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    params = signed()
    verify_receipt_link(SECRET, params, NOW)
    assert compared == [(params["s"], params["s"])]


def test_a_short_secret_or_an_id_no_link_can_carry_is_refused_when_signing() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        sign_receipt_link("x" * 31, "c-1", "p-1", EXPIRES)
    for customer_id, purchase_id in (("c 1", "p-1"), ("c-1", ""), ("c-1", "p" * 65)):
        with pytest.raises(ValueError):
            sign_receipt_link(SECRET, customer_id, purchase_id, EXPIRES)


def test_the_error_is_a_value_error() -> None:
    assert issubclass(ReceiptLinkError, ValueError)


@given(
    st.from_regex(IDENTIFIER_PATTERN, fullmatch=True).filter(lambda s: len(s) <= 64),
    st.from_regex(IDENTIFIER_PATTERN, fullmatch=True).filter(lambda s: len(s) <= 64),
)
def test_any_ids_make_a_link_that_verifies_as_they_are(customer_id: str, purchase_id: str) -> None:
    query = sign_receipt_link(SECRET, customer_id, purchase_id, EXPIRES)
    assert verify_receipt_link(SECRET, QueryParams(query), NOW) == (customer_id, purchase_id)
