"""Unsubscribe tokens: the customer id with an HMAC of it under a secret, so that the link in
an email works without a login and yet nobody can unsubscribe a customer by guessing their
id. Pure: no I/O."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

_PURPOSE = b"fedelta/unsubscribe/v1:"


def unsubscribe_token(customer_id: str, secret: bytes) -> str:
    encoded = base64.urlsafe_b64encode(customer_id.encode()).decode().rstrip("=")
    return f"{encoded}.{_mac(customer_id, secret)}"


def customer_of(token: str, secret: bytes) -> str | None:
    """The customer a token was made for, or None for a token this secret did not make."""
    encoded, dot, mac = token.partition(".")
    if not (encoded and dot and mac):
        return None
    try:
        customer_id = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not hmac.compare_digest(mac.encode(), _mac(customer_id, secret).encode()):
        return None
    return customer_id


def derived_secret(root: bytes) -> bytes:
    """A key of its own for unsubscribe tokens, derived from another secret when none is set."""
    return hmac.new(root, _PURPOSE, hashlib.sha256).digest()


def _mac(customer_id: str, secret: bytes) -> str:
    digest = hmac.new(secret, _PURPOSE + customer_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
