"""Partner administration by an operator (admin token): onboarding, the list, key rotation and
revocation. Credentials are shown once, in the answer that makes them, and never logged."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel

from services.ingest.adapters.repository import SqlIngestRepository
from services.ingest.api.deps import AdminScope, ClockDep, RuntimeDep
from services.ingest.api.schemas import Identifier, PartnerCreatedOut, PartnerIn
from services.ingest.domain.model import Partner, hash_api_key, new_credentials, new_partner_id
from shared.web.problems import Problem
from shared.web.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1/admin/partners", tags=["admin"], route_class=StrictJsonRoute)

PartnerId = Annotated[Identifier, Path()]


class PartnerOut(BaseModel):
    """A partner without its credentials: those are never shown again."""

    partner_id: str
    name: str
    created_at: datetime
    active: bool


class PartnerListOut(BaseModel):
    items: list[PartnerOut]


def _out(partner: Partner) -> PartnerOut:
    return PartnerOut(
        partner_id=partner.partner_id,
        name=partner.name,
        created_at=partner.created_at,
        active=partner.active,
    )


def _unknown(partner_id: str) -> Problem:
    return Problem(404, "Not found", f"no partner {partner_id!r}", slug="unknown-partner")


@router.post("", status_code=201)
async def create_partner(
    body: PartnerIn, response: Response, runtime: RuntimeDep, clock: ClockDep, _: AdminScope
) -> PartnerCreatedOut:
    partner_id = body.partner_id or new_partner_id()
    credentials = new_credentials()
    partner = Partner(
        partner_id=partner_id,
        name=body.name,
        api_key_hash=hash_api_key(credentials.api_key),
        signing_secret=credentials.signing_secret,
        created_at=clock.now(),
    )
    async with runtime.engine.begin() as conn:
        if not await SqlIngestRepository(conn).add_partner(partner):
            raise Problem(
                409, "Conflict", f"partner {partner_id!r} already exists", slug="partner-exists"
            )
    # The only time the credentials are shown: no cache may keep a copy.
    response.headers["Cache-Control"] = "no-store"
    return PartnerCreatedOut(
        partner_id=partner_id,
        name=body.name,
        api_key=credentials.api_key,
        signing_secret=credentials.signing_secret,
    )


@router.get("")
async def list_partners(runtime: RuntimeDep, _: AdminScope) -> PartnerListOut:
    async with runtime.engine.connect() as conn:
        found = await SqlIngestRepository(conn).partners()
    return PartnerListOut(items=[_out(p) for p in found])


@router.post("/{partner_id}/rotate-key")
async def rotate_key(
    partner_id: PartnerId, response: Response, runtime: RuntimeDep, _: AdminScope
) -> PartnerCreatedOut:
    """New API key and signing secret; the old ones stop working (within the partner cache's
    few seconds in each ingest process). A revoked partner stays revoked."""
    credentials = new_credentials()
    async with runtime.engine.begin() as conn:
        partner = await SqlIngestRepository(conn).replace_credentials(
            partner_id, hash_api_key(credentials.api_key), credentials.signing_secret
        )
    if partner is None:
        raise _unknown(partner_id)
    response.headers["Cache-Control"] = "no-store"
    return PartnerCreatedOut(
        partner_id=partner.partner_id,
        name=partner.name,
        api_key=credentials.api_key,
        signing_secret=credentials.signing_secret,
    )


@router.post("/{partner_id}/revoke")
async def revoke_partner(partner_id: PartnerId, runtime: RuntimeDep, _: AdminScope) -> PartnerOut:
    """The partner's calls are refused (401) from now on; what it reported stays. Revoking
    twice is harmless."""
    async with runtime.engine.begin() as conn:
        partner = await SqlIngestRepository(conn).deactivate_partner(partner_id)
    if partner is None:
        raise _unknown(partner_id)
    return _out(partner)
