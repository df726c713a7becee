"""The right to be forgotten across services, on the real stack: the enrolling partner's
DELETE removes the contact data from ingest's table, `customer.erased` and then a tombstone
reach the compacted customers topic, and notifications deletes what it kept."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.adapters.tables import customers
from services.ingest.api.app import create_app as create_ingest
from services.ingest.settings import IngestSettings
from services.notifications.adapters.repositories.api import SqlApiRepository
from services.notifications.adapters.repositories.jobs import SqlJobsRepository
from services.notifications.adapters.tables import (
    contacts,
    deliveries,
    preferences,
    purchase_activity,
)
from services.notifications.api.app import create_app as create_notifications
from services.notifications.domain.model import Preferences, QuietHours
from services.notifications.jobs import FIRST_LAPSE
from services.notifications.settings import NotificationsSettings
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent
from tests.integration.core.support import new_pos
from tests.integration.ingest.support import Pos, assert_problem, count_rows, unique
from tests.support.database import engine_for
from tests.support.kafka import read_all
from tests.support.polling import eventually
from tests.support.services import running, settings_for
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

EMAIL = "forget.me@example.com"
PHONE = "+358401234567"


@pytest_asyncio.fixture(scope="module")
async def ingest(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    stack.migrate("ingest")
    async with running(create_ingest, settings_for(IngestSettings, stack, "ingest")) as (_, c):
        yield c


@pytest_asyncio.fixture(scope="module")
async def notifications(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    stack.migrate("notifications")
    settings = settings_for(NotificationsSettings, stack, "notifications")
    async with running(create_notifications, settings) as (_, client):
        yield client


@pytest_asyncio.fixture(scope="module")
async def ingest_db(stack: Stack) -> AsyncIterator[AsyncEngine]:
    async with engine_for(stack, "ingest") as engine:
        yield engine


@pytest_asyncio.fixture(scope="module")
async def notifications_db(stack: Stack) -> AsyncIterator[AsyncEngine]:
    async with engine_for(stack, "notifications") as engine:
        yield engine


async def partner(ingest: httpx.AsyncClient) -> Pos:
    return await new_pos(ingest, "Erasure Test", "partner")


async def customer_records(stack: Stack, customer_id: str) -> list[Any]:
    return [
        record
        for record in await read_all(stack.kafka, topics.CUSTOMERS)
        if record.key == customer_id.encode()
    ]


async def test_an_erased_customer_leaves_no_personal_data_behind(
    stack: Stack,
    ingest: httpx.AsyncClient,
    notifications: httpx.AsyncClient,
    ingest_db: AsyncEngine,
    notifications_db: AsyncEngine,
) -> None:
    enrolling, other = await partner(ingest), await partner(ingest)
    customer_id = f"cust-{uuid.uuid4().hex}"
    enrolled = await enrolling.enrol(
        customer_id,
        email=EMAIL,
        phone=PHONE,
        consent={"email": True, "sms": True},
        locale="fi",
        time_zone="Europe/Helsinki",
        referred_by=f"cust-{uuid.uuid4().hex}",
    )
    assert enrolled.status_code == 202, enrolled.text

    async def contact_stored() -> bool:
        return (
            await count_rows(notifications_db, contacts, contacts.c.customer_id == customer_id) == 1
        )

    await eventually(contact_stored, within=60, what="the contact in notifications")
    async with notifications_db.begin() as conn:
        await SqlApiRepository(conn).save_preferences(
            Preferences(
                customer_id=customer_id,
                updated_at=datetime.now(UTC),
                email=True,
                sms=False,
                quiet_hours=QuietHours(start=time(22), end=time(7)),
                time_zone="Europe/Helsinki",
                locale="fi",
            )
        )
    bought = await enrolling.purchase(customer_id, unique("p"))
    assert bought.status_code == 202, bought.text

    async def purchase_recorded() -> bool:
        return bool(
            await count_rows(
                notifications_db,
                purchase_activity,
                purchase_activity.c.customer_id == customer_id,
            )
        )

    await eventually(purchase_recorded, within=60, what="the purchase in notifications")

    path = f"/v1/customers/{customer_id}"
    assert_problem(await other.send("DELETE", path, raw=b""), 403)
    assert_problem(await enrolling.send("DELETE", "/v1/customers/nobody-here", raw=b""), 404)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    erased = await enrolling.send("DELETE", path, raw=b"", headers=key)
    assert erased.status_code == 202, erased.text
    event_id = erased.json()["event_id"]
    replayed = await enrolling.send("DELETE", path, raw=b"", headers=key)
    assert (replayed.status_code, replayed.json()["event_id"]) == (202, event_id)
    # A newly signed erasure (another second: the same signed bytes again would be a replay,
    # refused) finds the customer erased already and answers the first erasure's event.
    resigned_at = int(datetime.now(UTC).timestamp()) + 1
    again = await enrolling.send("DELETE", path, raw=b"", timestamp=resigned_at)
    assert (again.status_code, again.json()["event_id"]) == (202, event_id)
    assert_problem(await enrolling.send("PATCH", path, {"locale": "it"}), 404)

    # Ingest: the row stays, pseudonymous, and purchases still resolve.
    async with ingest_db.connect() as conn:
        row = (
            await conn.execute(sa.select(customers).where(customers.c.customer_id == customer_id))
        ).one()
    assert (row.email, row.phone, row.consent_email, row.consent_sms) == (None, None, False, False)
    # Where the customer lives and who brought them are personal too: neutral values instead.
    assert (row.locale, row.time_zone, row.referred_by) == ("en", "UTC", None)
    assert row.erased_at is not None
    assert row.request_hash == "erased"  # the enrolment's fingerprint hashed the email too
    retried = await enrolling.enrol(
        customer_id, email=EMAIL, phone=PHONE, consent={"email": True, "sms": True}
    )
    assert_problem(retried, 409)

    # The topic: the erasure, then a tombstone for the key, and nothing after them.
    async def erasure_and_tombstone() -> list[Any] | None:
        found = await customer_records(stack, customer_id)
        return found if found and found[-1].value is None else None

    records = await eventually(erasure_and_tombstone, within=60, what="the tombstone")
    *profiles, erasure, tombstone = records
    event = CloudEvent.from_bytes(erasure.value)
    assert (event.id, event.type) == (event_id, events.CUSTOMER_ERASED)
    assert event.data_as(events.CustomerErased).customer_id == customer_id
    assert tombstone.headers == () or list(tombstone.headers) == []
    assert [CloudEvent.from_bytes(p.value).type for p in profiles] == [events.CUSTOMER_ENROLLED]

    # Notifications: contact, preferences and purchase activity gone; nothing left waiting.
    async def forgotten() -> bool:
        kept = [
            await count_rows(notifications_db, table, table.c.customer_id == customer_id)
            for table in (contacts, preferences, purchase_activity)
        ]
        return kept == [0, 0, 0]

    await eventually(forgotten, within=60, what="the contact data gone from notifications")
    # Purchases still resolve: the id row stays. (Notifications then keeps the purchase time,
    # ids and instants only; the win-back job passes over customers without a contact.)
    later = await other.purchase(customer_id, unique("p"))
    assert later.status_code == 202, later.text
    await eventually(purchase_recorded, within=60, what="the later purchase in notifications")
    async with notifications_db.connect() as conn:  # read only: rolled back on exit
        lapsed = await SqlJobsRepository(conn).lapsed(
            datetime.now(UTC) + timedelta(days=3650),
            timedelta(days=90),
            after_key=FIRST_LAPSE,
            limit=1_000_000,  # every one the test database holds
        )
    assert customer_id not in {activity.customer_id for activity in lapsed}
    async with notifications_db.connect() as conn:
        waiting = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(deliveries)
            .where(deliveries.c.customer_id == customer_id, deliveries.c.status == "scheduled")
        )
        logged = (
            await conn.execute(
                sa.select(deliveries.c.params).where(deliveries.c.customer_id == customer_id)
            )
        ).scalars()
        assert waiting == 0
        assert all(EMAIL not in str(params) and PHONE not in str(params) for params in logged)
    assert (await notifications.get(f"/v1/customers/{customer_id}/preferences")).status_code in (
        401,
        403,
        404,
    )
