"""Members brought over from another program, by an operator (admin token): what
`fedelta import members` sends, at most 500 rows a call (docs/import.md)."""

from fastapi import APIRouter

from services.ingest.api.deps import AdminScope, RuntimeDep
from services.ingest.api.replies import problem_responses
from services.ingest.api.schemas import MembersImportIn, MembersImportOut
from services.ingest.usecases import imports
from shared.web.strict_json import StrictJsonRoute

PATH = "/v1/admin/imports/members"
# 500 rows of at most a few hundred bytes each, with room for escaped characters: the
# limit of this route alone (every other route keeps `max_body_bytes`).
MAX_BODY_BYTES = 2 * 1024 * 1024

router = APIRouter(tags=["admin"], route_class=StrictJsonRoute)


@router.post(PATH, response_model=MembersImportOut, responses=problem_responses(422))
async def import_members(
    body: MembersImportIn, runtime: RuntimeDep, _: AdminScope
) -> MembersImportOut:
    """Enrols the members not enrolled yet, each with their profile and consent, an opening
    balance (a lot with its own expiry) and an opening tier; reports each row as `imported`,
    `exists` (left as it is) or `refused` (with the reason, naming the field). Running the
    same rows again imports nothing. An unknown or revoked partner: 422, nothing changed."""
    return await imports.import_members(runtime, body)
