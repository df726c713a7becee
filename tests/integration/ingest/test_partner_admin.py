"""Partner administration over ingest's admin API: the list never shows credentials, a
rotated key replaces the old one, a revoked partner is refused, and only an admin may."""

from __future__ import annotations

import httpx
import pytest

from services.ingest.settings import IngestSettings
from tests.integration.ingest.support import Pos, assert_problem, unique
from tests.support.services import ADMIN, READER, settings_for
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings(stack: Stack) -> IngestSettings:
    # No partner cache: a rotated or revoked key must be refused on the very next call.
    stack.migrate("ingest")
    return settings_for(IngestSettings, stack, "ingest", partner_cache_seconds="0")


async def create(client: httpx.AsyncClient, name: str) -> Pos:
    response = await client.post(
        "/v1/admin/partners", json={"name": name, "partner_id": unique("p")}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Pos(client, body["partner_id"], body["api_key"], body["signing_secret"])


async def test_the_list_shows_partners_without_their_credentials(client: httpx.AsyncClient) -> None:
    pos = await create(client, "Listed Café")
    response = await client.get("/v1/admin/partners", headers=ADMIN)
    assert response.status_code == 200
    [listed] = [p for p in response.json()["items"] if p["partner_id"] == pos.partner_id]
    assert listed["name"] == "Listed Café"
    assert listed["active"] is True
    assert set(listed) == {"partner_id", "name", "created_at", "active", "rate_limit_per_second"}
    assert listed["rate_limit_per_second"] is None  # the default (docs/operations.md)
    assert pos.api_key not in response.text and pos.signing_secret not in response.text


async def test_a_rotated_key_replaces_the_old_one(client: httpx.AsyncClient) -> None:
    pos = await create(client, "Rotating Books")
    assert (await pos.enrol(unique("c"))).status_code == 202
    response = await client.post(f"/v1/admin/partners/{pos.partner_id}/rotate-key", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    rotated = response.json()
    assert rotated["partner_id"] == pos.partner_id
    assert {rotated["api_key"], rotated["signing_secret"]}.isdisjoint(
        {pos.api_key, pos.signing_secret}
    )
    assert_problem(await pos.enrol(unique("c")), 401)  # the old credentials
    renewed = Pos(client, pos.partner_id, rotated["api_key"], rotated["signing_secret"])
    assert (await renewed.enrol(unique("c"))).status_code == 202


async def test_a_revoked_partner_is_refused_and_stays_listed_as_revoked(
    client: httpx.AsyncClient,
) -> None:
    pos = await create(client, "Closing Shop")
    assert (await pos.enrol(unique("c"))).status_code == 202
    for _ in range(2):  # revoking twice is harmless
        response = await client.post(f"/v1/admin/partners/{pos.partner_id}/revoke", headers=ADMIN)
        assert response.status_code == 200, response.text
        assert response.json()["active"] is False
    assert_problem(await pos.enrol(unique("c")), 401)
    listed = (await client.get("/v1/admin/partners", headers=ADMIN)).json()["items"]
    assert [p["active"] for p in listed if p["partner_id"] == pos.partner_id] == [False]
    # Rotating a revoked partner's key does not bring it back.
    rotated = (
        await client.post(f"/v1/admin/partners/{pos.partner_id}/rotate-key", headers=ADMIN)
    ).json()
    assert_problem(
        await Pos(client, pos.partner_id, rotated["api_key"], rotated["signing_secret"]).enrol(
            unique("c")
        ),
        401,
    )


async def test_unknown_partners_and_non_admins_are_refused(client: httpx.AsyncClient) -> None:
    for action in ("rotate-key", "revoke"):
        assert_problem(await client.post(f"/v1/admin/partners/nobody/{action}", headers=ADMIN), 404)
        assert_problem(
            await client.post(f"/v1/admin/partners/nobody/{action}", headers=READER), 403
        )
    assert_problem(await client.get("/v1/admin/partners", headers=READER), 403)
    assert_problem(await client.get("/v1/admin/partners"), 401)
