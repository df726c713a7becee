"""A customer's preferences: channels, quiet hours, time zone and locale."""

from __future__ import annotations

from datetime import datetime, time

from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.notifications import ports
from services.notifications.adapters import tables
from services.notifications.adapters.repositories.api import api_repository
from services.notifications.api.schemas import (
    ChannelsOut,
    PreferencesIn,
    PreferencesOut,
    QuietHoursOut,
)
from services.notifications.domain.model import HarassmentPolicy, Preferences, QuietHours
from shared.clock import Clock
from shared.storage.transactions import read_snapshot
from shared.web.idempotency import IdempotentCall, run_keyed
from shared.web.problems import Problem


async def get_preferences(
    engine: AsyncEngine, customer_id: str, harassment: HarassmentPolicy
) -> PreferencesOut:
    """The customer's preferences, or the defaults while they have chosen none."""
    async with read_snapshot(engine) as conn:
        notifications = api_repository(conn)
        chosen = await notifications.preferences(customer_id)
        await _ensure_known(notifications, customer_id, chosen)
    return answer_of(customer_id, chosen, harassment)


async def put_preferences(
    engine: AsyncEngine,
    customer_id: str,
    body: PreferencesIn,
    harassment: HarassmentPolicy,
    clock: Clock,
    call: IdempotentCall,
) -> PreferencesOut | JSONResponse:
    """Replaces the customer's preferences, once per Idempotency-Key."""

    async def replace(conn: AsyncConnection) -> PreferencesOut:
        chosen = _chosen(customer_id, body, clock.now())
        await api_repository(conn).save_preferences(chosen)
        return answer_of(customer_id, chosen, harassment)

    return await run_keyed(
        engine, call, tables.idempotency_keys, status_code=200, clock=clock, work=replace
    )


async def _ensure_known(
    notifications: ports.ApiRepository, customer_id: str, chosen: Preferences | None
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


def _chosen(customer_id: str, body: PreferencesIn, now: datetime) -> Preferences:
    return Preferences(
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


def answer_of(
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
