"""Request signing (POS calls, partner webhooks) and bearer service tokens (internal APIs)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Literal

from pydantic import SecretStr

SIGNATURE_HEADER = "Fedelta-Signature"
SIGNATURE_TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    pass


def signature_digest(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The Fedelta-Signature header value for a body sent at `timestamp` (unix seconds)."""
    return f"t={timestamp},v1={signature_digest(secret, timestamp, body)}"


def parse_signature(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    digests: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and value:
            digests.append(value)
    if timestamp is None or not digests:
        raise SignatureError("Fedelta-Signature must look like t=<unix seconds>,v1=<hex>")
    return timestamp, digests


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    now: datetime,
    tolerance_seconds: int = SIGNATURE_TOLERANCE_SECONDS,
) -> None:
    """Raises SignatureError unless the header signs this body recently enough."""
    timestamp, digests = parse_signature(header)
    age = now.timestamp() - timestamp
    if abs(age) > tolerance_seconds:
        raise SignatureError(
            f"signature timestamp is {int(abs(age))}s away from now; "
            f"at most {tolerance_seconds}s is accepted"
        )
    expected = signature_digest(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, digest) for digest in digests):
        raise SignatureError("signature does not match the body")


Scope = Literal["read", "admin"]


def token_scope(
    presented: str, admin_token: SecretStr, read_token: SecretStr | None
) -> Scope | None:
    """The scope a bearer token grants, or None for an unknown token."""
    if hmac.compare_digest(presented.encode(), admin_token.get_secret_value().encode()):
        return "admin"
    if read_token is not None and hmac.compare_digest(
        presented.encode(), read_token.get_secret_value().encode()
    ):
        return "read"
    return None


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
