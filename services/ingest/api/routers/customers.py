"""Enrolment and profile changes, reported by a partner's POS."""

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from services.ingest.api.deps import PartnerDep, PartnerSignatureDep, RuntimeDep
from services.ingest.api.replies import problem_responses
from services.ingest.api.schemas import AcceptedOut, CustomerPatchIn, EnrolmentIn, Identifier
from services.ingest.usecases import customers
from shared.web.idempotency import IdempotencyDep
from shared.web.problems import PROBLEM_JSON
from shared.web.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1/customers", tags=["customers"], route_class=StrictJsonRoute)


@router.post(
    "", status_code=202, response_model=AcceptedOut, responses=problem_responses(401, 409, 422)
)
async def enrol_customer(
    enrolment: EnrolmentIn, partner: PartnerDep, runtime: RuntimeDep, call: IdempotencyDep
) -> AcceptedOut | JSONResponse:
    return await customers.enrol(runtime, partner, enrolment, call)


@router.patch(
    "/{customer_id}",
    status_code=202,
    response_model=AcceptedOut,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_customer(
    customer_id: Annotated[Identifier, Path()],
    patch: CustomerPatchIn,
    partner: PartnerDep,
    runtime: RuntimeDep,
    call: IdempotencyDep,
    signature: PartnerSignatureDep,
) -> AcceptedOut | JSONResponse:
    """A profile change (409 `signature-replayed`: the same signed request came before under
    another Idempotency-Key or without one; sign anew to repeat a change)."""
    return await customers.change_profile(runtime, partner, customer_id, patch, call, signature)


@router.delete(
    "/{customer_id}",
    status_code=202,
    response_model=AcceptedOut,
    responses={
        400: {"description": "A malformed Idempotency-Key", "content": {PROBLEM_JSON: {}}},
        **problem_responses(401, 403, 404, 409, 422),
    },
)
async def erase_customer(
    customer_id: Annotated[Identifier, Path()],
    partner: PartnerDep,
    runtime: RuntimeDep,
    call: IdempotencyDep,
    signature: PartnerSignatureDep,
) -> AcceptedOut | JSONResponse:
    """The right to be forgotten (contract §2): the contact data leave ingest's table at once
    (the id row stays, pseudonymous, so that purchases still resolve), then every service
    learns it from `customer.erased`, and a tombstone lets compaction remove the profiles from
    the customers topic. Erasing an erased customer answers with the same event id; the same
    signed request again is a 409 `signature-replayed` unless it comes with its first key."""
    return await customers.erase(runtime, partner, customer_id, call, signature)
