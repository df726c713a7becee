"""A customer's delivery log."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from services.notifications.api.deps import NotificationsDep, ReadScope
from services.notifications.api.schemas import NotificationLogOut, NotificationOut
from services.notifications.domain.model import DeliveryStatus
from shared.bounds import Identifier
from shared.web.problems import Problem

router = APIRouter(prefix="/v1/customers", tags=["customers"])


@router.get("/{customer_id}/notifications")
async def get_notifications(
    customer_id: Annotated[Identifier, Path()],
    notifications: NotificationsDep,
    _: ReadScope,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> NotificationLogOut:
    """The messages for one customer, newest first, with their delivery status."""
    if not await notifications.is_known(customer_id):
        raise Problem(
            404,
            "Not found",
            f"no notifications are known for customer {customer_id!r}",
            slug="unknown-customer",
        )
    return NotificationLogOut(
        items=[
            NotificationOut(
                notification_id=delivery.notification_id,
                channel=delivery.channel.value,
                template=delivery.template,
                status=delivery.status.value,
                attempts=delivery.attempts,
                created_at=delivery.created_at,
                sent_at=delivery.sent_at,
                next_attempt_at=(
                    delivery.next_attempt_at
                    if delivery.status is DeliveryStatus.SCHEDULED
                    else None
                ),
                reason=delivery.last_error,
            )
            for delivery in await notifications.deliveries_for(customer_id, limit)
        ]
    )
