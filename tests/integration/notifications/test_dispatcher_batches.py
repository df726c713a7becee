"""The dispatcher in batches on the real PostgreSQL and mail catcher: two dispatchers on one
database share the due messages and each is delivered once; a welcome goes out in the first
batch while an older bulk is still due."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.adapters.repositories.consumer import SqlConsumerRepository
from services.notifications.adapters.tables import contacts, deliveries
from services.notifications.bootstrap import make_dispatcher
from services.notifications.dispatcher import DeliveryDispatcher
from services.notifications.domain.model import Channel, Contact, Delivery, schedule
from services.notifications.settings import NotificationsSettings
from shared.clock import SystemClock
from tests.support.notifications import delivering_settings, new_customer
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def settings(stack: Stack) -> NotificationsSettings:
    # Small batches, so that there are several. The dispatcher is driven by the tests
    # themselves (the service's own is not started), so its interval does not matter.
    return delivering_settings(stack, dispatch_batch_size="10", smtp_connections="4")


class Seeded:
    """Customers with a contact and email consent, and one message each, written as the
    consumer writes them; removed again at the end."""

    def __init__(self) -> None:
        self.customers: list[str] = []

    async def add(
        self, database: AsyncEngine, count: int, template: str, due: datetime
    ) -> list[Delivery]:
        made, people = [], []
        for _ in range(count):
            customer_id, email = new_customer()
            people.append(
                Contact(
                    customer_id=customer_id,
                    locale="en",
                    time_zone="UTC",
                    updated_at=due,
                    email=email,
                    consent_email=True,
                    profile_version=1,
                )
            )
            delivery = schedule(
                notification_id=str(uuid.uuid4()),
                customer_id=customer_id,
                channel=Channel.EMAIL,
                template=template,
                cause_event_id=str(uuid.uuid4()),
                now=due,
            )
            made.append(delivery)
            self.customers.append(customer_id)
        async with database.begin() as conn:
            repository = SqlConsumerRepository(conn)
            await repository.upsert_contacts(people)
            assert len(await repository.schedule(made)) == count
        return made

    async def statuses(self, database: AsyncEngine, ids: list[str]) -> dict[str, str]:
        async with database.connect() as conn:
            result = await conn.execute(
                sa.select(deliveries.c.notification_id, deliveries.c.status).where(
                    deliveries.c.notification_id.in_(ids)
                )
            )
            return {row.notification_id: row.status for row in result}

    async def remove(self, database: AsyncEngine) -> None:
        async with database.begin() as conn:
            await conn.execute(
                deliveries.delete().where(deliveries.c.customer_id.in_(self.customers))
            )
            await conn.execute(contacts.delete().where(contacts.c.customer_id.in_(self.customers)))


@pytest_asyncio.fixture
async def seeded(database: AsyncEngine) -> AsyncIterator[Seeded]:
    made = Seeded()
    yield made
    await made.remove(database)


MESSAGE_ID = re.compile(rb"^Message-ID:\s*<([^@>]+)@", re.IGNORECASE | re.MULTILINE)


def delivered(stack: Stack, since: float) -> Counter[str]:
    """How many times each notification id (a Message-ID's local part) reached the mail
    catcher in the files written since `since`: one pass over the headers, not a parse of
    every message the shared catcher ever received."""
    seen: Counter[str] = Counter()
    for path in stack.mail_dir.glob("*.eml"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime >= since:
                found = MESSAGE_ID.search(path.read_bytes()[:8192])
                if found:
                    seen[found.group(1).decode()] += 1
    return seen


async def drain(
    dispatcher: DeliveryDispatcher, seeded: Seeded, database: AsyncEngine, ids: list[str]
) -> int:
    """Rounds until none of `ids` is scheduled; returns how many messages this one decided."""
    decided = 0
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        decided += await dispatcher.dispatch_due()
        if "scheduled" not in (await seeded.statuses(database, ids)).values():
            return decided
        await asyncio.sleep(0.02)  # the other dispatcher's turn, not a wait for an outcome
    raise AssertionError(f"messages still scheduled after {DEADLINE_S}s")


async def test_two_dispatchers_share_the_due_messages_and_deliver_each_once(
    settings: NotificationsSettings, stack: Stack, database: AsyncEngine, seeded: Seeded
) -> None:
    since = time.time() - 1
    bulk = await seeded.add(database, 60, "win_back", datetime.now(UTC) - timedelta(seconds=1))
    ids = [d.notification_id for d in bulk]
    first = make_dispatcher(settings, database, SystemClock())
    second = make_dispatcher(settings, database, SystemClock())
    try:
        shares = await asyncio.gather(
            drain(first, seeded, database, ids), drain(second, seeded, database, ids)
        )
    finally:
        await first.close()
        await second.close()

    assert set((await seeded.statuses(database, ids)).values()) == {"sent"}
    # Both took part (each decided a batch at least: other tests' due messages too, on this
    # shared database), and each message reached the mail catcher exactly once.
    assert all(share > 0 for share in shares)
    caught = delivered(stack, since)
    assert {n: caught[n] for n in ids} == dict.fromkeys(ids, 1)


async def test_a_welcome_goes_out_in_the_first_batch_while_an_older_bulk_is_due(
    settings: NotificationsSettings, stack: Stack, database: AsyncEngine, seeded: Seeded
) -> None:
    since = time.time() - 1
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    bulk = await seeded.add(database, 50, "win_back", an_hour_ago)
    # Due after the whole bulk (and long before whatever else other tests left due now).
    [welcome] = await seeded.add(database, 1, "welcome", an_hour_ago + timedelta(minutes=1))
    dispatcher = make_dispatcher(settings, database, SystemClock())
    try:
        await dispatcher.dispatch_due()  # one batch of 10, from 51 due messages
    finally:
        await dispatcher.close()

    statuses = await seeded.statuses(database, [welcome.notification_id])
    assert statuses == {welcome.notification_id: "sent"}
    assert delivered(stack, since)[welcome.notification_id] == 1
    still_due = await seeded.statuses(database, [d.notification_id for d in bulk])
    assert list(still_due.values()).count("scheduled") >= 50 - 9 - 10  # a batch, and slack
