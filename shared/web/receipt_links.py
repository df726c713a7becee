"""A receipt's wallet link: the query string of a URL a POS prints as a QR code, which signs
its holder into the member wallet as that purchase's customer until it expires.

`c=<customer id>&p=<purchase id>&e=<unix seconds>&s=<hex HMAC-SHA256>` under a secret that
ingest (which signs) and web (which verifies) share. The MAC covers the three values joined by
newlines after a fixed prefix rather than by dots: ids may contain dots, so `a.b` + `c` and
`a` + `b.c` would sign alike, and the prefix keeps a MAC made for this from meaning anything
for another use of the secret. Ids are bounded like every id (shared.bounds), which also
keeps a newline out of them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import urlencode

from shared.bounds import IDENTIFIER_PATTERN, MAX_ID_LENGTH

# The least a receipt secret holds: HMAC-SHA256 gains nothing from a key longer than 32 bytes
# and a shorter one could be guessed offline from one printed link.
MIN_SECRET_BYTES = 32
_PREFIX = b"fedelta-receipt-link/v1"
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
_EXPIRY = re.compile(r"[0-9]{1,12}")  # as a request signature's `t` (shared.web.auth)
_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


class ReceiptLinkError(ValueError):
    """A link that is malformed, not signed by the secret, or expired. Its text never quotes
    the link's values."""


def _mac(secret: str, customer_id: str, purchase_id: str, expires: int) -> str:
    key = secret.encode()
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"a receipt secret holds at least {MIN_SECRET_BYTES} bytes")
    message = b"\n".join((_PREFIX, customer_id.encode(), purchase_id.encode(), b"%d" % expires))
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _identifier(value: str | None) -> bool:
    return value is not None and len(value) <= MAX_ID_LENGTH and bool(_IDENTIFIER.fullmatch(value))


def sign_receipt_link(secret: str, customer_id: str, purchase_id: str, expires_at: datetime) -> str:
    """The link's query string (URL-encoded), valid until `expires_at` (aware; whole seconds,
    rounded down). A ValueError for an id no link could carry or a short secret."""
    if not (_identifier(customer_id) and _identifier(purchase_id)):
        raise ValueError("a receipt link names a customer and a purchase by their ids")
    expires = int(expires_at.timestamp())
    signature = _mac(secret, customer_id, purchase_id, expires)
    return urlencode({"c": customer_id, "p": purchase_id, "e": str(expires), "s": signature})


def verify_receipt_link(secret: str, params: Mapping[str, str], now: datetime) -> tuple[str, str]:
    """(customer id, purchase id) of a link signed by `secret` that has not expired at `now`;
    a ReceiptLinkError for anything else. `params` are the query's parameters, decoded (e.g.
    Starlette's `request.query_params`); others than c, p, e and s are ignored."""
    customer_id, purchase_id = params.get("c"), params.get("p")
    expires, signature = params.get("e"), params.get("s")
    if (
        customer_id is None
        or purchase_id is None
        or not (_identifier(customer_id) and _identifier(purchase_id))
        or expires is None
        or not _EXPIRY.fullmatch(expires)
        or signature is None
        or not _DIGEST.fullmatch(signature)
    ):
        raise ReceiptLinkError("not a receipt link: it needs c, p, e and s as the receipt has them")
    expected = _mac(secret, customer_id, purchase_id, int(expires))
    if not hmac.compare_digest(expected, signature.lower()):
        raise ReceiptLinkError("the receipt link's signature does not match it")
    if now.timestamp() >= int(expires):
        raise ReceiptLinkError("the receipt link has expired")
    return customer_id, purchase_id
