"""Every dependency the ingest routers take, as Annotated aliases."""

from typing import Annotated

from fastapi import Depends, Header, Request

from services.ingest.adapters.repository import SqlIngestRepository
from services.ingest.domain.model import Partner, hash_api_key
from services.ingest.settings import IngestSettings
from shared.auth import SIGNATURE_HEADER, SignatureError, bearer_token, verify_signature
from shared.http import AdminScope, ClockDep, RuntimeDep, SettingsDep
from shared.problems import Problem

__all__ = ["AdminScope", "ClockDep", "IngestSettingsDep", "PartnerDep", "RuntimeDep"]


def get_ingest_settings(settings: SettingsDep) -> IngestSettings:
    assert isinstance(settings, IngestSettings)
    return settings


IngestSettingsDep = Annotated[IngestSettings, Depends(get_ingest_settings)]


async def authenticate_partner(
    request: Request,
    runtime: RuntimeDep,
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
    api_key = bearer_token(authorization)
    if api_key is None:
        raise _unauthorized("send Authorization: Bearer <partner API key>")
    # A connection of its own, given back at once: the call's write opens its transaction.
    async with runtime.engine.connect() as conn:
        partner = await SqlIngestRepository(conn).partner_by_key_hash(hash_api_key(api_key))
    if partner is None or not partner.active:
        raise _unauthorized("unknown or inactive partner API key")
    if not signature:
        raise _unauthorized(
            f"send {SIGNATURE_HEADER}: t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<body>'>"
        )
    try:
        verify_signature(
            partner.signing_secret,
            signature,
            await request.body(),
            clock.now(),
            tolerance_seconds=settings.max_clock_skew_seconds,
        )
    except SignatureError as error:
        raise _unauthorized(f"invalid {SIGNATURE_HEADER}: {error}") from None
    return partner


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, slug="unauthorized")


PartnerDep = Annotated[Partner, Depends(authenticate_partner)]
