"""A customer's delivery log, and the wallet's sign-in link sent to them."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.notifications.adapters.repositories.api import api_repository
from services.notifications.adapters.sealed_secrets import seal_sign_in_link
from services.notifications.api.schemas import (
    NotificationLogOut,
    NotificationOut,
    SignInLinkIn,
    SignInLinkOut,
)
from services.notifications.domain.model import (
    Delivery,
    DeliveryStatus,
    sign_in_id,
    sign_in_message,
    sign_in_refusal,
    time_zone_of,
)
from shared.clock import Clock
from shared.sealing import SealingError
from shared.storage.transactions import in_transaction, read_snapshot
from shared.web.problems import Problem

log = logging.getLogger(__name__)


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


async def send_sign_in_link(
    engine: AsyncEngine, customer_id: str, body: SignInLinkIn, clock: Clock
) -> SignInLinkOut:
    """Schedules the `sign_in` email with the link, due now (the dispatcher sends it within a
    round: domain.REQUESTED_TEMPLATES). The link is sealed before it is stored; the same link
    again (a retry) answers the message it made and sends nothing more."""
    now = clock.now()
    refusal = sign_in_refusal(body.expires_at, now)
    if refusal is not None:
        raise Problem(
            422,
            "Invalid request",
            f"expires_at: {refusal}",
            slug="invalid-request",
            errors=[{"loc": ["body", "expires_at"], "msg": refusal}],
        )
    notification_id = sign_in_id(customer_id, body.url)
    try:
        sealed = seal_sign_in_link(notification_id, body.url)
    except SealingError:
        raise Problem(
            503,
            "Service unavailable",
            "sign-in links are stored sealed, and FEDELTA_NOTIFICATIONS_SECRETS_KEY is not set",
            slug="sealing-unavailable",
        ) from None

    async def schedule(conn: AsyncConnection) -> None:
        notifications = api_repository(conn)
        contact = await notifications.contact(customer_id)
        if contact is None:
            raise Problem(
                404,
                "Not found",
                f"no contact is known for customer {customer_id!r}",
                slug="unknown-customer",
            )
        if not contact.email:
            raise Problem(
                422,
                "No email address",
                f"customer {customer_id!r} has no email address",
                slug="no-email-address",
            )
        zone = time_zone_of(contact, await notifications.preferences(customer_id))
        message = sign_in_message(notification_id, customer_id, sealed, body.expires_at, zone, now)
        await notifications.schedule([message])

    await in_transaction(engine, schedule)
    # Ids only: the link is a secret, the address personal.
    log.info("sign-in link for customer %s: notification %s", customer_id, notification_id)
    return SignInLinkOut(notification_id=notification_id)
