"""Request signing, as ingest checks it (`shared/web/auth.py`), byte for byte:

    Fedelta-Signature: t=<unix seconds>,v1=<hex digest>
    digest = HMAC-SHA256(secret, "<t>.<METHOD>.<path?query>.<raw body>")

The path and query are the bytes on the request line (percent-encoded as sent), so sign the
`httpx.URL` you send (`sign_request`) rather than a path you wrote by hand, and sign the body
bytes you send, not a dict that is serialised again later. A signature is refused more than
five minutes away from the server's clock.
"""

from __future__ import annotations

import hashlib
import hmac

import httpx

SIGNATURE_HEADER = "Fedelta-Signature"


def signed_message(timestamp: int, method: str, target: str | bytes, body: bytes) -> bytes:
    """`"<t>.<METHOD>.<path?query>.<raw body>"`: the target is the path and query exactly as
    sent on the request line (a str is taken as its UTF-8 bytes)."""
    raw_target = target if isinstance(target, bytes) else target.encode()
    return f"{timestamp}.{method.upper()}.".encode() + raw_target + b"." + body


def sign(secret: str, timestamp: int, method: str, target: str | bytes, body: bytes) -> str:
    """The `Fedelta-Signature` header value for `method` on `target` (path and query, e.g.
    `/v1/customers/c-1?x=1`) with `body`, sent at `timestamp` (unix seconds)."""
    message = signed_message(timestamp, method, target, body)
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def sign_request(secret: str, timestamp: int, method: str, url: httpx.URL, body: bytes) -> str:
    """The header for a call to `url`: over the path and query exactly as httpx will put them
    on the request line (`raw_path` is both, percent-encoded)."""
    return sign(secret, timestamp, method, url.raw_path, body)
