"""One-click unsubscribe (RFC 8058): the token in the link names the customer whose emails it
turns off. Naturally idempotent (it sets the email preference off), so it takes no
Idempotency-Key."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.notifications.adapters.repositories.api import api_repository
from services.notifications.api.schemas import UnsubscribedOut
from services.notifications.domain.model import HarassmentPolicy, Preferences
from services.notifications.domain.unsubscribe import customer_of
from shared.clock import Clock
from shared.storage.transactions import in_transaction
from shared.web.problems import Problem


def _not_found() -> Problem:
    # One answer for a forged token and an erased customer: nothing to learn by probing.
    return Problem(404, "Not found", "this unsubscribe link is not valid", slug="unknown-token")


def check_link(token: str, key: bytes) -> None:
    """Refuses a token this service did not make."""
    if customer_of(token, key) is None:
        raise _not_found()


async def unsubscribe(
    engine: AsyncEngine, token: str, key: bytes, harassment: HarassmentPolicy, clock: Clock
) -> UnsubscribedOut:
    """Turns the customer's email preference off; other preferences stay as they are."""
    customer_id = customer_of(token, key)
    if customer_id is None:
        raise _not_found()

    async def turn_off(conn: AsyncConnection) -> None:
        notifications = api_repository(conn)
        if await notifications.contact(customer_id) is None:
            raise _not_found()
        current = await notifications.preferences(customer_id) or Preferences(
            customer_id=customer_id,
            updated_at=clock.now(),
            quiet_hours=harassment.quiet_hours,
        )
        if current.email:
            await notifications.save_preferences(
                Preferences(
                    customer_id=customer_id,
                    updated_at=clock.now(),
                    email=False,
                    sms=current.sms,
                    quiet_hours=current.quiet_hours,
                    time_zone=current.time_zone,
                    locale=current.locale,
                )
            )

    await in_transaction(engine, turn_off)
    return UnsubscribedOut(channel="email", subscribed=False)
