"""Partner onboarding by an operator (admin token)."""

from fastapi import APIRouter, Response

from services.ingest.adapters.repository import SqlIngestRepository
from services.ingest.api.deps import AdminScope, ClockDep, RuntimeDep
from services.ingest.api.schemas import PartnerCreatedOut, PartnerIn
from services.ingest.domain.model import Partner, hash_api_key, new_credentials, new_partner_id
from shared.problems import Problem
from shared.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1/admin/partners", tags=["admin"], route_class=StrictJsonRoute)


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
