"""No replay of a signed call that has no id of its own. Pure Python: no I/O.

The `Fedelta-Signature` covers `<t>.<METHOD>.<path?query>.<raw body>`, not the
`Idempotency-Key` header. A signed call captured on the wire could be sent again within the
signature's tolerance: with a NEW key, or with none. Calls deduplicated by their own ids
(purchases, refunds, enrolments; a hold's capture or void, a coupon's use) answer such a replay
as the first time. The others would apply again: a till's redemption or hold would spend the
member's points again, a profile change (`PATCH /v1/customers/{id}`) would bring back a consent
withdrawn since, an erasure would be repeated. So ingest remembers, per partner, the digest of
each such signed call with the key it first came with (or none), for as long as the signature
could be accepted (the tolerance on either side of its timestamp, plus a margin for the
instances' clocks):

- the same signed call with the same key passes (a client resending its request after a lost
  answer: the first answer is replayed by its key);
- the same signed call with another key, or without a key (the first time or again), is
  refused (409 `signature-replayed`) before anything changes: to repeat an action, a client
  signs it anew (a new timestamp);
- a new signature (a new timestamp) with the same key passes (the key replays).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.ingest.domain.till import TillFailure

# Beyond the signature tolerance: how far the clocks of ingest's instances (and of the job
# that forgets old signatures) may drift apart without a remembered signature being forgotten
# while another instance would still accept it.
REMEMBER_MARGIN = timedelta(seconds=60)


@dataclass(frozen=True)
class Signature:
    """The signature a call was accepted with: the SHA-256 of the message it signs (unique
    per timestamp, method, target and body) and its timestamp."""

    digest: str
    signed_at: datetime


@dataclass(frozen=True)
class SignedCall:
    """A signed call without an id of its own, as it is remembered: per partner, with the
    Idempotency-Key it came with (None: none)."""

    partner_id: str
    digest: str
    signed_at: datetime
    idempotency_key: str | None


# The till's calls were the first guarded; the name stays for them.
SignedTillCall = SignedCall


def passes_again(first_key: str | None, key: str | None) -> bool:
    """Whether a signed call seen before (first with `first_key`) may pass again with `key`:
    only with the same key, and never without one."""
    return key is not None and key == first_key


def signature_of(message: bytes, timestamp: int) -> Signature:
    """`message` is what the partner signed (`shared.web.auth.signed_message`), `timestamp`
    the signature's `t` (unix seconds), both already verified."""
    return Signature(
        digest=hashlib.sha256(message).hexdigest(),
        signed_at=datetime.fromtimestamp(timestamp, UTC),
    )


def remembered_for(tolerance_seconds: int) -> timedelta:
    """How long after its timestamp a signature is remembered: a signature is accepted until
    `tolerance_seconds` after it, so it cannot come again after that (plus the margin)."""
    return timedelta(seconds=tolerance_seconds) + REMEMBER_MARGIN


REPLAYED_DETAIL = (
    "this signed request was already sent under another Idempotency-Key, or without one; "
    "sign a new request to repeat an action (a client retrying a lost answer sends the same "
    "request with the same key)"
)


def signature_replayed() -> TillFailure:
    return TillFailure(409, "Signature replayed", REPLAYED_DETAIL, slug="signature-replayed")
