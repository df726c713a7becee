"""No replay of a signed till call under another Idempotency-Key. Pure Python: no I/O.

The `Fedelta-Signature` covers `<t>.<METHOD>.<path?query>.<raw body>`, not the
`Idempotency-Key` header. A signed redemption or hold captured on the wire could be sent again
within the signature's tolerance with a NEW key, and points would spend the member's points
again: till redemptions and holds carry no id of their own (purchases, refunds and enrolments
do). So ingest remembers, per partner, the digest of each signed call that spends or reserves
points with the key it first came with, for as long as the signature could be accepted (the
tolerance on either side of its timestamp, plus a margin for the instances' clocks):

- the same signed call with the same key passes (a till resending its request after a lost
  answer: points replays its first answer);
- the same signed call with another key is refused (409 `signature-replayed`) before anything
  reaches points;
- a new signature (a new timestamp) with the same key passes (points replays by key).
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
class SignedTillCall:
    """A signed call that spends or reserves points, as it is remembered: per partner."""

    partner_id: str
    digest: str
    signed_at: datetime
    idempotency_key: str


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


def signature_replayed() -> TillFailure:
    return TillFailure(
        409,
        "Signature replayed",
        "this signed request was already sent under another Idempotency-Key; sign a new "
        "request (a till retrying a lost answer sends the same request with the same key)",
        slug="signature-replayed",
    )
