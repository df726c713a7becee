"""Every dependency the ingest routers take, as Annotated aliases."""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.types import Scope

from services.ingest.domain.model import Partner, hash_api_key
from services.ingest.domain.rate_limits import PartnerRateLimits, retry_after_seconds
from services.ingest.domain.till_replays import Signature, signature_of
from services.ingest.ports import LookupsThrottled, PartnerDirectory, PointsGateway, TillSignatures
from services.ingest.settings import IngestSettings
from services.ingest.usecases.purchase_groups import PurchaseGroups
from shared.runtime.process import Runtime
from shared.web.auth import (
    SIGNATURE_HEADER,
    SignatureError,
    bearer_token,
    parse_signature,
    signed_message,
    verify_signature,
)
from shared.web.deps import AdminScope, ClockDep, RuntimeDep, SettingsDep
from shared.web.idempotency import HEADER as IDEMPOTENCY_HEADER
from shared.web.idempotency import MAX_KEY_LENGTH, IdempotentCall, idempotent_call
from shared.web.problems import Problem

__all__ = [
    "AdminScope",
    "ClockDep",
    "IngestSettingsDep",
    "PartnerDep",
    "PartnerSignatureDep",
    "PointsGatewayDep",
    "PosCallDep",
    "PurchaseGroupsDep",
    "RuntimeDep",
    "SignatureDep",
    "TillSignaturesDep",
]


async def get_ingest_settings(settings: SettingsDep) -> IngestSettings:
    assert isinstance(settings, IngestSettings)
    return settings


async def get_partner_directory(request: Request) -> PartnerDirectory:
    directory: PartnerDirectory = request.app.state.partners
    return directory


async def get_purchase_groups(request: Request) -> PurchaseGroups:
    groups: PurchaseGroups = request.app.state.purchase_groups
    return groups


async def get_points_gateway(request: Request) -> PointsGateway | None:
    """Points' API for the till calls; None when ingest has no till token (they answer 503)."""
    gateway: PointsGateway | None = request.app.state.points
    return gateway


IngestSettingsDep = Annotated[IngestSettings, Depends(get_ingest_settings)]
PointsGatewayDep = Annotated[PointsGateway | None, Depends(get_points_gateway)]
PartnerDirectoryDep = Annotated[PartnerDirectory, Depends(get_partner_directory)]
PurchaseGroupsDep = Annotated[PurchaseGroups, Depends(get_purchase_groups)]


async def authenticate_partner(
    request: Request,
    partners: PartnerDirectoryDep,
    clock: ClockDep,
    settings: IngestSettingsDep,
    authorization: Annotated[str | None, Header()] = None,
    signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
) -> Partner:
    """The partner whose API key and signature this call carries; 401 for anything else.

    FastAPI has read the body before this runs (and refused malformed JSON with a 422 that
    changes nothing); the signature is checked over those exact bytes, before any validation
    of their content can answer with something else than 401.
    """
    return await _authenticated(request, partners, clock.now(), settings, authorization, signature)


async def _authenticated(
    request: Request,
    partners: PartnerDirectory,
    now: datetime,
    settings: IngestSettings,
    authorization: str | None,
    signature: str | None,
) -> Partner:
    partner = await authenticated(
        partners,
        now,
        settings,
        authorization,
        signature,
        request.method,
        request_target(request.scope),
        await request.body(),
    )
    admit(request.app.state.rate_limits, partner, now)
    return partner


def admit(limits: PartnerRateLimits, partner: Partner, now: datetime) -> None:
    """Counts an authenticated call against its partner's rate limit (domain/rate_limits.py):
    a 429 with Retry-After past it, before the call does anything."""
    wait = limits.take(partner.partner_id, partner.rate_limit_per_second, now)
    if wait > 0:
        raise Problem(
            429,
            "Too many requests",
            "this partner's calls exceed its rate limit: retry after the seconds that "
            "Retry-After says",
            slug="rate-limited",
            headers={"Retry-After": str(retry_after_seconds(wait))},
        )


async def authenticated(
    partners: PartnerDirectory,
    now: datetime,
    settings: IngestSettings,
    authorization: str | None,
    signature: str | None,
    method: str,
    target: bytes,
    body: bytes,
) -> Partner:
    """The partner whose API key signed this method, target and body recently enough; a 401
    Problem for anything else (the request's parts as received, for the hot path too)."""
    api_key = bearer_token(authorization)
    if api_key is None:
        raise _unauthorized("send Authorization: Bearer <partner API key>")
    try:
        partner = await partners.by_key_hash(hash_api_key(api_key))
    except LookupsThrottled:
        raise Problem(
            429,
            "Too many requests",
            "too many unknown API keys are being tried right now: retry shortly",
            slug="unknown-keys-throttled",
            headers={"Retry-After": "1"},
        ) from None
    if partner is None or not partner.active:
        raise _unauthorized("unknown or inactive partner API key")
    if not signature:
        raise _unauthorized(
            f"send {SIGNATURE_HEADER}: t=<unix seconds>,v1=<hex HMAC-SHA256 of "
            "'<t>.<METHOD>.<path?query>.<raw body>'>"
        )
    try:
        verify_signature(
            partner.signing_secret,
            signature,
            method,
            target,
            body,
            now,
            tolerance_seconds=settings.max_clock_skew_seconds,
        )
    except SignatureError as error:
        raise _unauthorized(f"invalid {SIGNATURE_HEADER}: {error}") from None
    return partner


def request_target(scope: Scope) -> bytes:
    """The path and query exactly as the client sent them on the request line: the raw bytes
    the server received, not a URL decoded and encoded again (which could differ from what the
    client signed, and would let two spellings of one path share a signature)."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    # Some servers leave the query on raw_path; the query string is authoritative.
    path = raw_path.partition(b"?")[0]
    query: bytes = scope.get("query_string", b"")
    return path + b"?" + query if query else path


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, slug="unauthorized")


PartnerDep = Annotated[Partner, Depends(authenticate_partner)]


@dataclass(frozen=True)
class PosCall:
    """Everything a POS call's handler needs besides its body, from one dependency: FastAPI
    solves each dependency anew on every request, and on the hot path that solving cost more
    than the call's own work did (a profile at c=64 put it at a quarter of a worker's time)."""

    partner: Partner
    idempotency: IdempotentCall
    now: datetime
    settings: IngestSettings
    runtime: Runtime
    groups: PurchaseGroups


async def pos_call(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=IDEMPOTENCY_HEADER,
            json_schema_extra={"minLength": 1, "maxLength": MAX_KEY_LENGTH},
        ),
    ] = None,
) -> PosCall:
    state = request.app.state
    settings: IngestSettings = state.settings
    runtime: Runtime = state.runtime
    now = runtime.clock.now()
    partner = await _authenticated(request, state.partners, now, settings, authorization, signature)
    return PosCall(
        partner=partner,
        idempotency=await idempotent_call(request, idempotency_key),
        now=now,
        settings=settings,
        runtime=runtime,
        groups=state.purchase_groups,
    )


PosCallDep = Annotated[PosCall, Depends(pos_call)]


async def get_till_signatures(request: Request) -> TillSignatures:
    signatures: TillSignatures = request.app.state.till_signatures
    return signatures


async def accepted_signature(
    request: Request,
    pos: PosCallDep,  # first: the call is authenticated, its signature verified
    signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
) -> Signature:
    """The signature this call was accepted with: the digest of the message it signs (the
    timestamp, method, target and body as received), for `domain/till_replays.py`."""
    return await _signature_of(request, signature)


async def partner_signature(
    request: Request,
    partner: PartnerDep,  # first: the call is authenticated, its signature verified
    signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
) -> Signature:
    """`accepted_signature`, for the calls authenticated by `PartnerDep` (profile changes and
    erasures: FastAPI solves the partner once for the route and this)."""
    return await _signature_of(request, signature)


async def _signature_of(request: Request, signature: str | None) -> Signature:
    assert signature is not None  # authentication refused a call without one
    timestamp, _ = parse_signature(signature)
    message = signed_message(
        timestamp, request.method, request_target(request.scope), await request.body()
    )
    return signature_of(message, timestamp)


TillSignaturesDep = Annotated[TillSignatures, Depends(get_till_signatures)]
SignatureDep = Annotated[Signature, Depends(accepted_signature)]
PartnerSignatureDep = Annotated[Signature, Depends(partner_signature)]
