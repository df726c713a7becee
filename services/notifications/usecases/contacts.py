"""The members behind an email address: what the wallet's sign-in asks, knowing only the
address a member typed."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.adapters.repositories.api import api_repository
from services.notifications.api.schemas import ContactsOut
from shared.storage.transactions import read_snapshot

# One address shared by more members than this is not a sign-in's: the answer is bounded.
MAX_MATCHES = 100


async def customers_with_email(engine: AsyncEngine, email: str) -> ContactsOut:
    """The members whose current contact email is `email`, whatever its case, in id order (at
    most MAX_MATCHES); none is an empty list, not an error."""
    async with read_snapshot(engine) as conn:
        found = await api_repository(conn).customers_with_email(email, MAX_MATCHES)
    return ContactsOut(customer_ids=found)
