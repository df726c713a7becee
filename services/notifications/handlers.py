"""What notifications does with each event it consumes: plain functions, side effects injected.

Handlers only record contacts and schedule messages, in the consumer's transaction; sending
is the dispatcher's job, outside it, so a slow mail server never holds up the topics.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.notifications.adapters.repository import NotificationRepository
from services.notifications.domain.model import Channel, Contact, schedule
from shared import events
from shared.events import CloudEvent, derived_event_id
from shared.outbox import EventSink

log = logging.getLogger(__name__)

SOURCE = "notifications"
ERASED = "customer erased"


@dataclass(frozen=True)
class Context:
    notifications: NotificationRepository
    sink: EventSink
    now: datetime


async def customer_enrolled(cause: CloudEvent, ctx: Context) -> None:
    profile = events.CustomerEnrolled.model_validate(cause.data)
    await ctx.notifications.upsert_contact(_contact(profile, cause))
    # Scheduled whatever the consent: the decision is taken at send time, on the contact as it
    # is then, and a suppressed message stays visible in the delivery log.
    await _schedule(cause, ctx, profile.customer_id, "welcome")


async def customer_updated(cause: CloudEvent, ctx: Context) -> None:
    profile = events.CustomerUpdated.model_validate(cause.data)
    await ctx.notifications.upsert_contact(_contact(profile, cause))


async def customer_erased(cause: CloudEvent, ctx: Context) -> None:
    erased = events.CustomerErased.model_validate(cause.data)
    await ctx.notifications.delete_contact(erased.customer_id)
    await ctx.notifications.suppress_scheduled(erased.customer_id, ERASED)


async def tier_changed(cause: CloudEvent, ctx: Context) -> None:
    change = events.TierChanged.model_validate(cause.data)
    if change.direction != "up":
        return  # tier_down and its warning come with their own templates later
    await _schedule(cause, ctx, change.customer_id, "tier_up", {"tier": change.to_tier})


async def _schedule(
    cause: CloudEvent,
    ctx: Context,
    customer_id: str,
    template: str,
    params: dict[str, Any] | None = None,
    channel: Channel = Channel.EMAIL,
) -> None:
    delivery = schedule(
        notification_id=derived_event_id(cause.id, f"{template}/{channel.value}"),
        customer_id=customer_id,
        channel=channel,
        template=template,
        cause_event_id=cause.id,
        now=ctx.now,
        params=params,
    )
    if await ctx.notifications.schedule(delivery):
        log.info(
            "scheduled %s %s %s for customer %s",
            delivery.template,
            delivery.channel.value,
            delivery.notification_id,
            customer_id,
        )


def _contact(profile: events.CustomerProfile, cause: CloudEvent) -> Contact:
    return Contact(
        customer_id=profile.customer_id,
        email=profile.email,
        phone=profile.phone,
        locale=profile.locale,
        time_zone=profile.time_zone,
        consent_email=profile.consent.email,
        consent_sms=profile.consent.sms,
        updated_at=cause.time,
    )


Handler = Callable[[CloudEvent, Context], Awaitable[None]]

HANDLERS: dict[str, Handler] = {
    events.CUSTOMER_ENROLLED: customer_enrolled,
    events.CUSTOMER_UPDATED: customer_updated,
    events.CUSTOMER_ERASED: customer_erased,
    events.TIER_CHANGED: tier_changed,
}
