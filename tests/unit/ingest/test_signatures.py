"""The POS signature as ingest checks it: over the method, the path and query exactly as sent
and the raw body bytes, with the clock's tolerance."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.ingest.api.deps import request_target
from shared.web.auth import SignatureError, sign, verify_signature

SECRET = "partner-signing-secret"
NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
BODY = json.dumps({"purchase_id": "p-1", "total": "49.99"}).encode()
PATH = "/v1/purchases"


def signed_at(moment: datetime, body: bytes = BODY, secret: str = SECRET) -> str:
    return sign(secret, int(moment.timestamp()), "POST", PATH, body)


def check(header: str, body: bytes = BODY, **kwargs: Any) -> None:
    verify_signature(SECRET, header, "POST", PATH, body, NOW, **kwargs)


def test_a_body_signed_now_with_the_partner_secret_is_accepted() -> None:
    check(signed_at(NOW), tolerance_seconds=300)


def test_the_signature_covers_the_exact_bytes_not_the_json_they_mean() -> None:
    same_json_other_bytes = json.dumps(json.loads(BODY), indent=2).encode()
    with pytest.raises(SignatureError, match="does not match"):
        check(signed_at(NOW), same_json_other_bytes)


def test_a_tampered_body_is_refused() -> None:
    tampered = BODY.replace(b"49.99", b"99.99")
    with pytest.raises(SignatureError, match="does not match"):
        check(signed_at(NOW), tampered)


def test_another_partners_secret_does_not_verify() -> None:
    with pytest.raises(SignatureError):
        check(signed_at(NOW, secret="someone-else"))


@pytest.mark.parametrize("offset", [timedelta(seconds=-301), timedelta(seconds=301)])
def test_a_signature_further_than_the_tolerance_from_now_is_refused(offset: timedelta) -> None:
    with pytest.raises(SignatureError, match="at most 300s"):
        check(signed_at(NOW + offset), tolerance_seconds=300)


@pytest.mark.parametrize("offset", [timedelta(seconds=-300), timedelta(seconds=300)])
def test_a_signature_within_the_tolerance_is_accepted(offset: timedelta) -> None:
    check(signed_at(NOW + offset), tolerance_seconds=300)


@pytest.mark.parametrize("header", ["", "v1=abc", "t=123", "t=soon,v1=abc", "garbage"])
def test_a_malformed_header_is_refused(header: str) -> None:
    with pytest.raises(SignatureError):
        check(header)


def scope(raw_path: bytes | None, query: bytes = b"", path: str = "/decoded") -> dict[str, Any]:
    result: dict[str, Any] = {"type": "http", "path": path, "query_string": query}
    if raw_path is not None:
        result["raw_path"] = raw_path
    return result


@pytest.mark.parametrize(
    ("asgi_scope", "target"),
    [
        (scope(b"/v1/customers/a%2Fb"), b"/v1/customers/a%2Fb"),  # not decoded to a/b
        (scope(b"/v1/x", b"b=2&a=1"), b"/v1/x?b=2&a=1"),  # the query as sent, not re-ordered
        (scope(b"/v1/x?b=2", b"b=2"), b"/v1/x?b=2"),  # a server leaving the query on raw_path
        (scope(None, b"q=1", path="/v1/y"), b"/v1/y?q=1"),  # no raw_path: the path
    ],
)
def test_the_target_is_the_path_and_query_exactly_as_received(
    asgi_scope: dict[str, Any], target: bytes
) -> None:
    assert request_target(asgi_scope) == target
