"""A customer's preferences: channels, quiet hours, time zone and locale."""

from datetime import time
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from services.notifications.adapters import tables
from services.notifications.adapters.repository import SqlNotificationRepository
from services.notifications.api.deps import (
    AdminScope,
    ClockDep,
    HarassmentDep,
    IdempotencyDep,
    NotificationsDep,
    ReadScope,
    RuntimeDep,
)
from services.notifications.api.schemas import (
    ChannelsOut,
    PreferencesIn,
    PreferencesOut,
    QuietHoursOut,
)
from services.notifications.domain.model import HarassmentPolicy, Preferences, QuietHours
from shared.bounds import Identifier
from shared.web.problems import PROBLEM_JSON, Problem

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


async def _ensure_known(
    notifications: SqlNotificationRepository, customer_id: str, chosen: Preferences | None
) -> None:
    # Preferences sit beside the contact: none for a customer never seen or erased, unless
    # they were given ahead of the profile.
    if chosen is None and await notifications.contact(customer_id) is None:
        raise Problem(
            404,
            "Not found",
            f"no contact is known for customer {customer_id!r}",
            slug="unknown-customer",
        )


@router.get(
    "/{customer_id}/preferences",
    response_model=PreferencesOut,
    responses=_problems(401, 404, 422),
)
async def get_preferences(
    customer_id: Annotated[Identifier, Path()],
    notifications: NotificationsDep,
    harassment: HarassmentDep,
    _: ReadScope,
) -> PreferencesOut:
    """The customer's preferences, or the defaults while they have chosen none."""
    chosen = await notifications.preferences(customer_id)
    await _ensure_known(notifications, customer_id, chosen)
    return _answer(customer_id, chosen, harassment)


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
    async with runtime.engine.begin() as conn:
        if (replayed := await call.replay(conn, tables.idempotency_keys)) is not None:
            return replayed
        notifications = SqlNotificationRepository(conn)
        now = clock.now()
        chosen = Preferences(
            customer_id=customer_id,
            updated_at=now,
            email=body.channels.email,
            sms=body.channels.sms,
            quiet_hours=QuietHours(
                start=time.fromisoformat(body.quiet_hours.start),
                end=time.fromisoformat(body.quiet_hours.end),
            ),
            time_zone=body.time_zone,
            locale=body.locale,
        )
        await notifications.save_preferences(chosen)
        answer = _answer(customer_id, chosen, harassment)
        await call.remember(conn, tables.idempotency_keys, 200, answer, now)
    return answer


def _answer(
    customer_id: str, chosen: Preferences | None, harassment: HarassmentPolicy
) -> PreferencesOut:
    quiet = chosen.quiet_hours if chosen else harassment.quiet_hours
    return PreferencesOut(
        customer_id=customer_id,
        channels=ChannelsOut(
            email=chosen.email if chosen else True, sms=chosen.sms if chosen else True
        ),
        quiet_hours=QuietHoursOut(
            start=quiet.start.strftime("%H:%M"), end=quiet.end.strftime("%H:%M")
        ),
        time_zone=chosen.time_zone if chosen else None,
        locale=chosen.locale if chosen else None,
        updated_at=chosen.updated_at if chosen else None,
    )
