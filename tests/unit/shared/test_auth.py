import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.web.auth import (
    Role,
    SignatureError,
    bearer_token,
    credential_of,
    sign,
    token_hash,
    verify_signature,
)

SECRET = "whsec_test"
NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
T = int(NOW.timestamp())
PATH = "/v1/purchases"


def test_a_fresh_signature_of_the_request_verifies() -> None:
    body = b'{"purchase_id":"p1"}'
    verify_signature(SECRET, sign(SECRET, T, "POST", PATH, body), "POST", PATH, body, NOW)


def test_the_signature_is_hmac_sha256_of_timestamp_method_target_and_body() -> None:
    # Fixed vector, so partners' implementations in other languages can check theirs:
    #   printf '%s' '1700000000.POST./v1/purchases?store=s-1.{}' | openssl dgst -sha256 -hmac secret
    assert sign("secret", 1700000000, "POST", "/v1/purchases?store=s-1", b"{}") == (
        "t=1700000000,v1=f0d1ced1b4e4baa3d1c5a6e232a28d806133c7d9fa7577e113709eceee9fb434"
    )


def test_the_method_is_signed_upper_case() -> None:
    assert sign(SECRET, T, "patch", PATH, b"{}") == sign(SECRET, T, "PATCH", PATH, b"{}")


def test_the_old_form_over_time_and_body_only_is_refused() -> None:
    old = hmac.new(SECRET.encode(), f"{T}.".encode() + b"{}", hashlib.sha256).hexdigest()
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(SECRET, f"t={T},v1={old}", "POST", PATH, b"{}", NOW)


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("PATCH", "/v1/customers/bob"),  # another customer's path: the replay of finding 6
        ("POST", "/v1/customers/alice"),  # another verb
        ("PATCH", "/v1/customers/alice?x=1"),  # a query added
        ("PATCH", "/v1/customers/%61lice"),  # the same path spelt otherwise
    ],
)
def test_a_signature_does_not_carry_over_to_another_method_path_or_query(
    method: str, target: str
) -> None:
    header = sign(SECRET, T, "PATCH", "/v1/customers/alice", b"{}")
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(SECRET, header, method, target, b"{}", NOW)


def test_a_target_given_as_bytes_is_signed_as_those_bytes() -> None:
    header = sign(SECRET, T, "GET", "/v1/x?q=%C3%A9", b"")
    verify_signature(SECRET, header, "GET", b"/v1/x?q=%C3%A9", b"", NOW)


@given(st.binary(min_size=1, max_size=200), st.integers(0, 199))
def test_any_change_to_the_body_is_refused(body: bytes, position: int) -> None:
    header = sign(SECRET, T, "POST", PATH, body)
    index = position % len(body)
    tampered = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(SECRET, header, "POST", PATH, tampered, NOW)


@pytest.mark.parametrize("age", [301, -301, 3600])
def test_a_signature_older_or_newer_than_five_minutes_is_refused(age: int) -> None:
    with pytest.raises(SignatureError, match="300s"):
        verify_signature(
            SECRET, sign(SECRET, T - age, "POST", PATH, b"{}"), "POST", PATH, b"{}", NOW
        )


def test_five_minutes_exactly_is_still_accepted() -> None:
    verify_signature(SECRET, sign(SECRET, T - 300, "POST", PATH, b"{}"), "POST", PATH, b"{}", NOW)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "t=abc,v1=00",
        "v1=00",
        "t=1700000000",
        "garbage",
        "t=" + "9" * 400 + ",v1=00",  # hundreds of digits: not an overflow, a refusal
        "t=1700000000\u00b2,v1=00",  # '²' passes str.isdigit()
        "t=\u0661\u0667\u0660\u0660,v1=00",  # Arabic-Indic digits pass it too
        "t=-1700000000,v1=00",
        "t=+1700000000,v1=00",
        "t= 1700000000,v1=00x",
        "t=1700000000,v1=not-hex",
    ],
)
def test_malformed_headers_are_refused(header: str) -> None:
    with pytest.raises(SignatureError, match="must look like"):
        verify_signature(SECRET, header, "POST", PATH, b"{}", NOW)


def test_another_secret_does_not_verify() -> None:
    with pytest.raises(SignatureError):
        verify_signature(SECRET, sign("other", T, "POST", PATH, b"{}"), "POST", PATH, b"{}", NOW)


def test_token_scopes() -> None:
    admin, read = token_hash("a" * 20), token_hash("r" * 20)

    def token_scope(presented: str, admin: str, read: str | None) -> str | None:
        hashes: dict[Role, list[str]] = {"admin": [admin], "read": [] if read is None else [read]}
        credential = credential_of(presented, hashes)
        return None if credential is None else credential.scope

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
