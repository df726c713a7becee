"""Request signing (POS calls, partner webhooks) and bearer service tokens (internal APIs)."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from shared.bounds import MAX_ID_LENGTH, PRINTABLE_PATTERN

SIGNATURE_HEADER = "Fedelta-Signature"
SIGNATURE_TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    pass


# Unix seconds fit in 10 digits until the year 2286; a longer `t=` is garbage, refused before
# it becomes a huge int (or a float overflow when compared with the clock).
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_DIGEST = re.compile(r"[0-9a-fA-F]{1,128}")


def signed_message(timestamp: int, method: str, target: str | bytes, body: bytes) -> bytes:
    """`"<t>.<METHOD>.<path?query>.<raw body>"`: the target is the path and query exactly as
    sent on the request line (bytes as they were; a str is taken as its UTF-8 bytes)."""
    raw_target = target if isinstance(target, bytes) else target.encode()
    return f"{timestamp}.{method.upper()}.".encode() + raw_target + b"." + body


def signature_digest(
    secret: str, timestamp: int, method: str, target: str | bytes, body: bytes
) -> str:
    message = signed_message(timestamp, method, target, body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, method: str, target: str | bytes, body: bytes) -> str:
    """The Fedelta-Signature header value for a request sent at `timestamp` (unix seconds):
    `method` and `target` (path and query, e.g. `/v1/customers/c-1?x=1`) are signed with the
    body, so a captured signature cannot be replayed on another path or with another verb."""
    return f"t={timestamp},v1={signature_digest(secret, timestamp, method, target, body)}"


def parse_signature(header: str) -> tuple[int, list[str]]:
    """`t=<unix seconds>` exactly once and at least one `v1=<hex>`. Strict: a repeated `t`
    (whatever its values), a malformed `t` or `v1`, or a part that is not `name=value` is
    refused rather than skipped, so no spelling of a header verifies what its first reading
    would not. Parts of other schemes (`v2=...`, for a later signature version) are ignored."""
    timestamps: list[int] = []
    digests: list[str] = []
    for part in header.split(","):
        name, equals, value = part.strip().partition("=")
        if not equals or not name:
            raise SignatureError(f"{_SHAPE}: every part is name=value")
        if name == "t":
            if not _TIMESTAMP.fullmatch(value):
                raise SignatureError(f"{_SHAPE}: t must be unix seconds (digits only)")
            timestamps.append(int(value))
        elif name == "v1":
            if not _DIGEST.fullmatch(value):
                raise SignatureError(f"{_SHAPE}: v1 must be hexadecimal")
            digests.append(value.lower())
    if len(timestamps) > 1:
        raise SignatureError(f"{_SHAPE}: t is given {len(timestamps)} times, once is accepted")
    if not timestamps or not digests:
        raise SignatureError(_SHAPE)
    return timestamps[0], digests


_SHAPE = "Fedelta-Signature must look like t=<unix seconds>,v1=<hex>"


def verify_signature(
    secret: str,
    header: str,
    method: str,
    target: str | bytes,
    body: bytes,
    now: datetime,
    tolerance_seconds: int = SIGNATURE_TOLERANCE_SECONDS,
) -> None:
    """Raises SignatureError unless the header signs this method, target and body recently
    enough."""
    timestamp, digests = parse_signature(header)
    age = now.timestamp() - timestamp
    if abs(age) > tolerance_seconds:
        raise SignatureError(
            f"signature timestamp is {int(abs(age))}s away from now; "
            f"at most {tolerance_seconds}s is accepted"
        )
    expected = signature_digest(secret, timestamp, method, target, body)
    if not any(hmac.compare_digest(expected, digest) for digest in digests):
        raise SignatureError(
            "signature does not match the request: sign '<t>.<METHOD>.<path?query>.<raw body>'"
        )


# The roles of a service's own credentials, each opening what the one before it does and more:
# `read` the reads, `operate` the running of the service (jobs, held earnings), `admin`
# everything. `till` is points' alone: what ingest holds to act for a partner's till.
Role = Literal["read", "operate", "admin"]
Scope = Literal["read", "operate", "admin", "till"]
ROLES: tuple[Role, ...] = ("read", "operate", "admin")
# How many hex digits of a credential's hash name it as an actor (`admin:1f2e3d4c5b6a`).
ACTOR_DIGITS = 12


@dataclass(frozen=True)
class Credential:
    """What a bearer token is: its scope and the actor it names, its role and the start of
    its hash (e.g. `admin:1f2e3d4c5b6a`; `till` for the till token, whose call names its
    partner instead; for the console's token, scope `admin` and `console:` and the person
    its call names, e.g. `console:staff:alice`)."""

    scope: Scope
    actor: str


def token_hash(token: str) -> str:
    """The SHA-256 of a bearer token, hex: what a service is configured with instead of the
    token (the tokens are random, 256 bits: a fast hash is enough)."""
    return hashlib.sha256(token.encode()).hexdigest()


def actor_of(role: Role, token: str) -> str:
    """The actor a service's token of `role` names: `admin:1f2e3d4c5b6a`."""
    return _actor(role, token_hash(token))


def _actor(role: Role, digest: str) -> str:
    return f"{role}:{digest[:ACTOR_DIGITS]}"


# The header a console call names the person acting in (`staff:alice`, `member:c-123`): the
# web console holds one credential for all its users, so who acts travels beside it.
ACTOR_HEADER = "Fedelta-Actor"
# The label's bound: `console:` and 64 characters stay within what an actor is everywhere it
# is recorded (bounds.Label, 128).
MAX_ACTOR_LENGTH = MAX_ID_LENGTH
_ACTOR_LABEL = re.compile(PRINTABLE_PATTERN)


class ActorError(ValueError):
    """A console call that names no person acting, or names one malformed; `slug` says which
    (`actor-required`, `invalid-actor`)."""

    def __init__(self, slug: str, detail: str) -> None:
        super().__init__(detail)
        self.slug = slug


def console_actor(named: str | None) -> str:
    """The actor of a console call naming `named` in Fedelta-Actor: `console:<named>`; an
    ActorError when it is missing or not a label (1 to 64 characters, no control ones)."""
    if named is None:
        raise ActorError(
            "actor-required",
            f"a call with the console credential names the person acting in {ACTOR_HEADER} "
            "(e.g. staff:alice)",
        )
    if not 1 <= len(named) <= MAX_ACTOR_LENGTH or not _ACTOR_LABEL.fullmatch(named):
        raise ActorError(
            "invalid-actor",
            f"{ACTOR_HEADER} must be 1 to {MAX_ACTOR_LENGTH} characters, none of them a "
            "control character",
        )
    return f"console:{named}"


def _any_matches(digest: str, known: Iterable[str]) -> bool:
    """Whether `digest` is among `known`, every one compared in constant time."""
    found = False
    for candidate in known:
        if hmac.compare_digest(digest, candidate):
            found = True
    return found


def credential_of(
    presented: str,
    hashes: Mapping[Role, Iterable[str]],
    till_hashes: Iterable[str] = (),
    console_hashes: Iterable[str] = (),
    *,
    named_actor: str | None = None,
) -> Credential | None:
    """The credential a bearer token is among a service's token hashes (each role's current
    and next, the till token's and the console's), or None for an unknown token. Every hash
    is compared, in constant time. The console token is the admin role for the person
    `named_actor` names (the Fedelta-Actor header, which no other credential reads): an
    ActorError when it names none or a malformed one."""
    digest = token_hash(presented)
    found: Role | None = None
    for role in ROLES:
        if _any_matches(digest, hashes.get(role, ())):
            found = role
    till = _any_matches(digest, till_hashes)
    console = _any_matches(digest, console_hashes)
    if found is not None:
        return Credential(found, _actor(found, digest))
    if till:
        return Credential("till", "till")
    if console:
        return Credential("admin", console_actor(named_actor))
    return None


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
