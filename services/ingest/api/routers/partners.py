"""Partner administration by an operator (admin token): onboarding, the list, key rotation and
revocation. Credentials are shown once, in the answer that makes them, and never logged."""

from typing import Annotated

from fastapi import APIRouter, Path, Response

from services.ingest.api.deps import AdminScope, RuntimeDep
from services.ingest.api.schemas import (
    Identifier,
    PartnerCreatedOut,
    PartnerIn,
    PartnerListOut,
    PartnerOut,
    PartnerRateLimitIn,
)
from services.ingest.usecases import partners
from shared.web.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1/admin/partners", tags=["admin"], route_class=StrictJsonRoute)

PartnerId = Annotated[Identifier, Path()]


@router.post("", status_code=201)
async def create_partner(
    body: PartnerIn, response: Response, runtime: RuntimeDep, _: AdminScope
) -> PartnerCreatedOut:
    created = await partners.create(runtime, body)
    # The only time the credentials are shown: no cache may keep a copy.
    response.headers["Cache-Control"] = "no-store"
    return created


@router.get("")
async def list_partners(runtime: RuntimeDep, _: AdminScope) -> PartnerListOut:
    return await partners.list_all(runtime)


@router.post("/{partner_id}/rotate-key")
async def rotate_key(
    partner_id: PartnerId, response: Response, runtime: RuntimeDep, _: AdminScope
) -> PartnerCreatedOut:
    """New API key and signing secret; the old ones stop working (within the partner cache's
    few seconds in each ingest process). A revoked partner stays revoked."""
    rotated = await partners.rotate_key(runtime, partner_id)
    response.headers["Cache-Control"] = "no-store"
    return rotated


@router.post("/{partner_id}/revoke")
async def revoke_partner(partner_id: PartnerId, runtime: RuntimeDep, _: AdminScope) -> PartnerOut:
    """The partner's calls are refused (401) from now on; what it reported stays. Revoking
    twice is harmless."""
    return await partners.revoke(runtime, partner_id)


@router.put("/{partner_id}/rate-limit")
async def set_rate_limit(
    partner_id: PartnerId, body: PartnerRateLimitIn, runtime: RuntimeDep, _: AdminScope
) -> PartnerOut:
    """The partner's calls per second for the whole ingest instance (null: the default,
    FEDELTA_INGEST_PARTNER_RATE_LIMIT_PER_SECOND); in force within the partner cache's few
    seconds. Calls past it are answered 429 with Retry-After."""
    return await partners.set_rate_limit(runtime, partner_id, body.rate_limit_per_second)
