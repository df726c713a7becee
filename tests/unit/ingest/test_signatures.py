"""The POS signature as ingest checks it: over the raw body bytes, with the clock's tolerance."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.auth import SignatureError, sign, verify_signature

SECRET = "partner-signing-secret"
NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
BODY = json.dumps({"purchase_id": "p-1", "total": "49.99"}).encode()


def signed_at(moment: datetime, body: bytes = BODY, secret: str = SECRET) -> str:
    return sign(secret, int(moment.timestamp()), body)


def test_a_body_signed_now_with_the_partner_secret_is_accepted() -> None:
    verify_signature(SECRET, signed_at(NOW), BODY, NOW, tolerance_seconds=300)


def test_the_signature_covers_the_exact_bytes_not_the_json_they_mean() -> None:
    same_json_other_bytes = json.dumps(json.loads(BODY), indent=2).encode()
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(SECRET, signed_at(NOW), same_json_other_bytes, NOW)


def test_a_tampered_body_is_refused() -> None:
    tampered = BODY.replace(b"49.99", b"99.99")
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(SECRET, signed_at(NOW), tampered, NOW)


def test_another_partners_secret_does_not_verify() -> None:
    with pytest.raises(SignatureError):
        verify_signature(SECRET, signed_at(NOW, secret="someone-else"), BODY, NOW)


@pytest.mark.parametrize("offset", [timedelta(seconds=-301), timedelta(seconds=301)])
def test_a_signature_further_than_the_tolerance_from_now_is_refused(offset: timedelta) -> None:
    with pytest.raises(SignatureError, match="at most 300s"):
        verify_signature(SECRET, signed_at(NOW + offset), BODY, NOW, tolerance_seconds=300)


@pytest.mark.parametrize("offset", [timedelta(seconds=-300), timedelta(seconds=300)])
def test_a_signature_within_the_tolerance_is_accepted(offset: timedelta) -> None:
    verify_signature(SECRET, signed_at(NOW + offset), BODY, NOW, tolerance_seconds=300)


@pytest.mark.parametrize("header", ["", "v1=abc", "t=123", "t=soon,v1=abc", "garbage"])
def test_a_malformed_header_is_refused(header: str) -> None:
    with pytest.raises(SignatureError):
        verify_signature(SECRET, header, BODY, NOW)
