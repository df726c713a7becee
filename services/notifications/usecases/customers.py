"""A customer's delivery log."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.adapters.repositories.api import api_repository
from services.notifications.api.schemas import NotificationLogOut, NotificationOut
from services.notifications.domain.model import Delivery, DeliveryStatus
from shared.storage.transactions import read_snapshot
from shared.web.problems import Problem


async def delivery_log(engine: AsyncEngine, customer_id: str, limit: int) -> NotificationLogOut:
    """The messages for one customer, newest first, with their delivery status."""
    async with read_snapshot(engine) as conn:
        notifications = api_repository(conn)
        if not await notifications.is_known(customer_id):
            raise Problem(
                404,
                "Not found",
                f"no notifications are known for customer {customer_id!r}",
                slug="unknown-customer",
            )
        found = await notifications.deliveries_for(customer_id, limit)
    return NotificationLogOut(items=[_notification(delivery) for delivery in found])


def _notification(delivery: Delivery) -> NotificationOut:
    return NotificationOut(
        notification_id=delivery.notification_id,
        channel=delivery.channel.value,
        template=delivery.template,
        status=delivery.status.value,
        attempts=delivery.attempts,
        created_at=delivery.created_at,
        sent_at=delivery.sent_at,
        next_attempt_at=(
            delivery.next_attempt_at if delivery.status is DeliveryStatus.SCHEDULED else None
        ),
        reason=delivery.last_error,
    )
