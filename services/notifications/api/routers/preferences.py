"""A customer's preferences: channels, quiet hours, time zone and locale."""

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from services.notifications.api.deps import (
    AdminScope,
    ClockDep,
    HarassmentDep,
    IdempotencyDep,
    ReadScope,
    RuntimeDep,
)
from services.notifications.api.schemas import PreferencesIn, PreferencesOut
from services.notifications.usecases import preferences
from shared.bounds import Identifier
from shared.web.problems import PROBLEM_JSON

router = APIRouter(prefix="/v1/customers", tags=["preferences"])

_MEANINGS = {
    400: "A malformed Idempotency-Key",
    401: "A missing or unknown service token",
    403: "The call needs the admin scope",
    404: "Neither a contact nor preferences are known for the customer",
    409: "The Idempotency-Key was used for another call",
    422: "Invalid request",
}


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"description": _MEANINGS[status], "content": {PROBLEM_JSON: {}}}
        for status in statuses
    }


@router.get(
    "/{customer_id}/preferences",
    response_model=PreferencesOut,
    responses=_problems(401, 404, 422),
)
async def get_preferences(
    customer_id: Annotated[Identifier, Path()],
    runtime: RuntimeDep,
    harassment: HarassmentDep,
    _: ReadScope,
) -> PreferencesOut:
    """The customer's preferences, or the defaults while they have chosen none."""
    return await preferences.get_preferences(runtime.engine, customer_id, harassment)


@router.put(
    "/{customer_id}/preferences",
    response_model=PreferencesOut,
    responses=_problems(400, 401, 403, 409, 422),
)
async def put_preferences(
    customer_id: Annotated[Identifier, Path()],
    body: PreferencesIn,
    runtime: RuntimeDep,
    harassment: HarassmentDep,
    clock: ClockDep,
    call: IdempotencyDep,
    _: AdminScope,
) -> PreferencesOut | JSONResponse:
    """Replaces the customer's preferences; they apply from the next message sent. They may
    come before the customer's profile (a POS that signs a customer up and sets their quiet
    hours at once: the profile reaches this service through Kafka a little later), so that
    the welcome already follows them; erasing the customer deletes them with the profile."""
    return await preferences.put_preferences(
        runtime.engine, customer_id, body, harassment, clock, call
    )
