"""Enrolment and profile changes, reported by a partner's POS; a member's consent, set in the
wallet (the console's credential, admin role)."""

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from services.ingest.api.deps import AdminScope, PartnerDep, PartnerSignatureDep, RuntimeDep
from services.ingest.api.replies import problem_responses
from services.ingest.api.schemas import (
    AcceptedOut,
    ConsentOut,
    ConsentPutIn,
    CustomerPatchIn,
    EnrolmentIn,
    Identifier,
)
from services.ingest.usecases import customers
from shared.web.deps import AdminCredential
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


def _console_problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The consent calls' error answers: a service credential's, not a partner's."""
    meanings = {
        400: "A malformed Idempotency-Key, or the console's credential without Fedelta-Actor",
        401: "Unknown service token",
        403: "The token's role is not admin (a till or read token)",
        404: "Unknown or erased customer",
        409: "The Idempotency-Key was used for another request",
        422: "Invalid request: email and sms, each true or false, and nothing else",
    }
    return {s: {"description": meanings[s], "content": {PROBLEM_JSON: {}}} for s in statuses}


@router.get(
    "/{customer_id}/consent", response_model=ConsentOut, responses=_console_problems(401, 403, 404)
)
async def get_consent(
    customer_id: Annotated[Identifier, Path()], runtime: RuntimeDep, _: AdminScope
) -> ConsentOut:
    """The member's consent and their profile's version (admin: the wallet shows it)."""
    return await customers.consent_now(runtime, customer_id)


@router.put(
    "/{customer_id}/consent",
    response_model=ConsentOut,
    responses=_console_problems(400, 401, 403, 404, 409, 422),
)
async def put_consent(
    customer_id: Annotated[Identifier, Path()],
    consent: ConsentPutIn,
    runtime: RuntimeDep,
    call: IdempotencyDep,
    credential: AdminCredential,
) -> ConsentOut | JSONResponse:
    """A member sets their consent in the wallet (admin: the web's console credential naming
    them; a partner changes it with the signed PATCH). A change bumps the profile's version and
    publishes `customer.updated`; the same consent again changes and publishes nothing."""
    return await customers.change_consent(
        runtime, customer_id, consent, call, actor=credential.actor
    )
