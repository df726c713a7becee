"""Issue 19, secrets at rest: a partner's signing secret is stored sealed (AES-256-GCM under
FEDELTA_INGEST_SECRETS_KEY, `shared.sealing`), never in clear; a signed call still verifies; a
sealed secret copied to another partner's row does not open; and the migration's sealing turns
a secret stored in clear before it into a sealed one."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.adapters import tables
from services.ingest.adapters.repositories.api import partner_repository
from services.ingest.adapters.sealed_secrets import context, keyring
from services.ingest.domain.model import hash_api_key
from services.ingest.settings import IngestSettings
from shared.sealing import Keyring, SealingError, SealingKey, is_sealed
from shared.storage.sealed_columns import reseal
from tests.integration.ingest.support import Pos, assert_problem, unique
from tests.support.services import ADMIN, settings_for
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings(stack: Stack) -> IngestSettings:
    stack.migrate("ingest")
    return settings_for(IngestSettings, stack, "ingest", partner_cache_seconds="0")


async def create(client: httpx.AsyncClient) -> Pos:
    response = await client.post(
        "/v1/admin/partners", json={"name": "Sealed Café", "partner_id": unique("p")}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Pos(client, body["partner_id"], body["api_key"], body["signing_secret"])


async def stored_secret(db: AsyncEngine, partner_id: str) -> str:
    async with db.connect() as conn:
        value = await conn.scalar(
            sa.select(tables.partners.c.signing_secret).where(
                tables.partners.c.partner_id == partner_id
            )
        )
    assert isinstance(value, str)
    return value


async def test_the_table_holds_no_signing_secret_and_a_signed_call_verifies(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    pos = await create(client)
    stored = await stored_secret(db, pos.partner_id)
    assert stored.startswith("v1:") and is_sealed(stored)
    assert pos.signing_secret not in stored
    async with db.connect() as conn:
        every = (await conn.scalars(sa.select(tables.partners.c.signing_secret))).all()
    assert all(is_sealed(value) for value in every), "a partner's secret is stored in clear"
    assert (await pos.enrol(unique("c"))).status_code == 202
    # Rotated credentials are sealed too, and verify.
    rotated = (
        await client.post(f"/v1/admin/partners/{pos.partner_id}/rotate-key", headers=ADMIN)
    ).json()
    assert rotated["signing_secret"] not in await stored_secret(db, pos.partner_id)
    renewed = Pos(client, pos.partner_id, rotated["api_key"], rotated["signing_secret"])
    assert (await renewed.enrol(unique("c"))).status_code == 202
    assert_problem(await pos.enrol(unique("c")), 401)


async def test_a_sealed_secret_copied_to_another_partner_does_not_open(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    victim, thief = await create(client), await create(client)
    copied = await stored_secret(db, victim.partner_id)
    # In a transaction rolled back: nobody else ever reads the copied row.
    async with db.connect() as conn, conn.begin() as transaction:
        await conn.execute(
            sa.update(tables.partners)
            .where(tables.partners.c.partner_id == thief.partner_id)
            .values(signing_secret=copied)
        )
        partners = partner_repository(conn)
        found = await partners.partner_by_key_hash(hash_api_key(victim.api_key))
        assert found is not None and found.signing_secret == victim.signing_secret
        with pytest.raises(SealingError):
            await partners.partner_by_key_hash(hash_api_key(thief.api_key))
        await transaction.rollback()


async def test_the_migration_seals_a_secret_stored_in_clear(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    pos = await create(client)
    async with db.connect() as conn, conn.begin() as transaction:
        await conn.execute(  # as a row written before the migration
            sa.update(tables.partners)
            .where(tables.partners.c.partner_id == pos.partner_id)
            .values(signing_secret=pos.signing_secret)
        )
        changed = await conn.run_sync(
            lambda sync: reseal(
                sync, "partners", "partner_id", "signing_secret", context, keyring()
            )
        )
        assert changed >= 1
        stored = await conn.scalar(
            sa.select(tables.partners.c.signing_secret).where(
                tables.partners.c.partner_id == pos.partner_id
            )
        )
        assert isinstance(stored, str) and is_sealed(stored)
        assert pos.signing_secret not in stored
        assert keyring().unseal(stored, context(pos.partner_id)) == pos.signing_secret
        found = await partner_repository(conn).partner_by_key_hash(hash_api_key(pos.api_key))
        assert found is not None and found.signing_secret == pos.signing_secret
        await transaction.rollback()
    assert (await pos.enrol(unique("c"))).status_code == 202


async def test_after_a_key_rotation_old_secrets_open_and_are_sealed_again_with_the_new_key(
    client: httpx.AsyncClient, db: AsyncEngine
) -> None:
    pos = await create(client)
    old_key = SealingKey.generate()
    rotated = Keyring(keyring().current, (*keyring().previous, old_key))
    async with db.connect() as conn, conn.begin() as transaction:
        await conn.execute(  # as sealed before the rotation, with the old key
            sa.update(tables.partners)
            .where(tables.partners.c.partner_id == pos.partner_id)
            .values(
                signing_secret=Keyring(old_key).seal(pos.signing_secret, context(pos.partner_id))
            )
        )
        with pytest.raises(SealingError):  # the service without the old key cannot open it
            await partner_repository(conn).partner_by_key_hash(hash_api_key(pos.api_key))
        changed = await conn.run_sync(
            lambda sync: reseal(sync, "partners", "partner_id", "signing_secret", context, rotated)
        )
        assert changed >= 1
        found = await partner_repository(conn).partner_by_key_hash(hash_api_key(pos.api_key))
        assert found is not None and found.signing_secret == pos.signing_secret
        await transaction.rollback()
