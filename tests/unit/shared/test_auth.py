from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from shared.auth import SignatureError, bearer_token, sign, token_scope, verify_signature

SECRET = "whsec_test"
NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
T = int(NOW.timestamp())


def test_a_fresh_signature_of_the_body_verifies() -> None:
    body = b'{"purchase_id":"p1"}'
    verify_signature(SECRET, sign(SECRET, T, body), body, NOW)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # Fixed vector, so partners' implementations in other languages can check theirs.
    assert sign("secret", 1700000000, b"{}") == (
        "t=1700000000,v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
    )


@given(st.binary(min_size=1, max_size=200), st.integers(0, 199))
def test_any_change_to_the_body_is_refused(body: bytes, position: int) -> None:
    header = sign(SECRET, T, body)
    index = position % len(body)
    tampered = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(SECRET, header, tampered, NOW)


@pytest.mark.parametrize("age", [301, -301, 3600])
def test_a_signature_older_or_newer_than_five_minutes_is_refused(age: int) -> None:
    with pytest.raises(SignatureError, match="300s"):
        verify_signature(SECRET, sign(SECRET, T - age, b"{}"), b"{}", NOW)


def test_five_minutes_exactly_is_still_accepted() -> None:
    verify_signature(SECRET, sign(SECRET, T - 300, b"{}"), b"{}", NOW)


@pytest.mark.parametrize("header", ["", "t=abc,v1=00", "v1=00", "t=1700000000", "garbage"])
def test_malformed_headers_are_refused(header: str) -> None:
    with pytest.raises(SignatureError):
        verify_signature(SECRET, header, b"{}", NOW)


def test_another_secret_does_not_verify() -> None:
    with pytest.raises(SignatureError):
        verify_signature(SECRET, sign("other", T, b"{}"), b"{}", NOW)


def test_token_scopes() -> None:
    admin, read = SecretStr("a" * 20), SecretStr("r" * 20)
    assert token_scope("a" * 20, admin, read) == "admin"
    assert token_scope("r" * 20, admin, read) == "read"
    assert token_scope("x" * 20, admin, read) is None
    assert token_scope("r" * 20, admin, None) is None


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer abc ", "abc"),
        ("Basic abc", None),
        ("Bearer ", None),
        (None, None),
    ],
)
def test_bearer_token_parsing(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token
