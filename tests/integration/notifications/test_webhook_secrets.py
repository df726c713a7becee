"""Issue 19, secrets at rest: a webhook's secret is stored sealed (AES-256-GCM under
FEDELTA_NOTIFICATIONS_SECRETS_KEY, `shared.sealing`), never in clear; what the dispatcher
reads to sign its calls is the secret the partner was given (test_notifications_channels.py
checks the calls' signatures end to end); a sealed secret copied to another partner's row does
not open; and the migration's sealing turns a secret stored in clear before it into a sealed
one."""

from __future__ import annotations

import uuid

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.notifications.adapters import tables
from services.notifications.adapters.repositories.api import api_repository
from services.notifications.adapters.repositories.dispatcher import dispatch_repository
from services.notifications.adapters.sealed_secrets import context, keyring
from services.notifications.settings import NotificationsSettings
from shared.sealing import SealingError, is_sealed
from shared.storage.sealed_columns import reseal
from tests.support.notifications import delivering_settings
from tests.support.services import ADMIN
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

WEBHOOKS = tables.partner_webhooks


@pytest.fixture(scope="module")
def settings(stack: Stack) -> NotificationsSettings:
    return delivering_settings(stack, webhook_allow_hosts="127.0.0.1")


async def register(client: httpx.AsyncClient) -> tuple[str, str]:
    partner_id = f"p-{uuid.uuid4().hex[:12]}"
    response = await client.put(
        f"/v1/partners/{partner_id}/webhook",
        json={"url": "http://127.0.0.1:9/hooks"},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    secret: str = response.json()["secret"]
    return partner_id, secret


async def stored(conn: AsyncConnection, partner_id: str) -> str:
    value = await conn.scalar(
        sa.select(WEBHOOKS.c.secret).where(WEBHOOKS.c.partner_id == partner_id)
    )
    assert isinstance(value, str)
    return value


async def test_the_table_holds_no_webhook_secret_and_the_dispatcher_reads_it(
    client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    partner_id, secret = await register(client)
    async with database.connect() as conn:
        value = await stored(conn, partner_id)
        assert is_sealed(value) and secret not in value
        every = (await conn.scalars(sa.select(WEBHOOKS.c.secret))).all()
        assert all(is_sealed(v) for v in every), "a webhook's secret is stored in clear"
        read = await dispatch_repository(conn).webhooks_of([partner_id])
    assert read[partner_id].secret == secret
    # Pointing the webhook elsewhere keeps its secret, still sealed.
    moved = await client.put(
        f"/v1/partners/{partner_id}/webhook",
        json={"url": "http://127.0.0.1:9/moved"},
        headers=ADMIN,
    )
    assert moved.status_code == 200, moved.text
    assert secret not in moved.text
    async with database.connect() as conn:
        assert await stored(conn, partner_id) == value
        shown = await client.get(f"/v1/partners/{partner_id}/webhook", headers=ADMIN)
    assert shown.status_code == 200 and secret not in shown.text


async def test_a_sealed_secret_copied_to_another_partner_does_not_open(
    client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    (victim, secret), (thief, _) = await register(client), await register(client)
    # In a transaction rolled back: nobody else ever reads the copied row.
    async with database.connect() as conn, conn.begin() as transaction:
        await conn.execute(
            sa.update(WEBHOOKS)
            .where(WEBHOOKS.c.partner_id == thief)
            .values(secret=await stored(conn, victim))
        )
        read = await dispatch_repository(conn).webhooks_of([victim, thief])
        assert read[victim].secret == secret
        # Left out (its calls suppressed, logged), not opened, and the others' still read.
        assert thief not in read
        with pytest.raises(SealingError):
            await api_repository(conn).webhook(thief)  # what the admin API reads
        await transaction.rollback()


async def test_the_migration_seals_a_secret_stored_in_clear(
    client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    partner_id, secret = await register(client)
    async with database.connect() as conn, conn.begin() as transaction:
        await conn.execute(  # as a row written before the migration
            sa.update(WEBHOOKS).where(WEBHOOKS.c.partner_id == partner_id).values(secret=secret)
        )
        changed = await conn.run_sync(
            lambda sync: reseal(
                sync, "partner_webhooks", "partner_id", "secret", context, keyring()
            )
        )
        assert changed >= 1
        value = await stored(conn, partner_id)
        assert is_sealed(value) and secret not in value
        assert (await dispatch_repository(conn).webhooks_of([partner_id]))[
            partner_id
        ].secret == secret
        await transaction.rollback()
