"""The console's partners (admin only): the list, a new partner whose key and secret are shown
once on the page answering the form (never in a URL, nor kept: the list page after it does not
show them), a key rotated, a partner revoked, and what a manager and a stale form get."""

from __future__ import annotations

import logging

import pytest

from services.web.api.routers import partners
from tests.support.fakes.web import FakeServices
from tests.support.web_pages import CSRF, pages, staff

PARTNER = {
    "partner_id": "bakery",
    "name": "The bakery",
    "created_at": "2026-11-01T00:00:00Z",
    "active": True,
}
CREATED = {
    "partner_id": "bakery-2",
    "name": "Second bakery",
    "api_key": "fk_live_THE_KEY_SHOWN_ONCE",
    "signing_secret": "THE_SECRET_SHOWN_ONCE",
}
FORM = {"csrf_token": CSRF, "idempotency_key": "form-key-5", "name": "Second bakery"}


def listed() -> FakeServices:
    services = FakeServices()
    services.answer("GET", "ingest", "/v1/admin/partners", {"items": [PARTNER]})
    return services


async def test_the_partners_are_listed_for_an_admin() -> None:
    async with pages([partners.router], listed(), who=staff("admin")) as client:
        response = await client.get("/console/partners")
    assert response.status_code == 200 and "The bakery" in response.text
    assert "/console/partners/bakery/rotate-key" in response.text


async def test_a_manager_may_not_see_or_post() -> None:
    services = listed()
    async with pages([partners.router], services, who=staff("manager")) as client:
        page = await client.get("/console/partners")
        post = await client.post("/console/partners", data=FORM)
    assert page.status_code == 403 and post.status_code == 403
    assert services.sent("POST", "ingest") == []


async def test_a_new_partners_credentials_are_shown_once(caplog: pytest.LogCaptureFixture) -> None:
    services = listed()
    services.answer("POST", "ingest", "/v1/admin/partners", CREATED, status=201)
    caplog.set_level(logging.DEBUG)
    async with pages([partners.router], services, who=staff("admin")) as client:
        created = await client.post("/console/partners", data=FORM)
        later = await client.get("/console/partners")
    assert created.status_code == 200 and "location" not in created.headers
    assert "fk_live_THE_KEY_SHOWN_ONCE" in created.text and "THE_SECRET_SHOWN_ONCE" in created.text
    assert created.headers["cache-control"] == "no-store"
    assert "THE_KEY_SHOWN_ONCE" not in later.text
    assert "SHOWN_ONCE" not in caplog.text
    [call] = services.sent("POST", "ingest")
    assert call.body == {"name": "Second bakery"} and call.actor == "staff:alice"
    assert call.idempotency_key == "form-key-5"


async def test_a_key_is_rotated_and_a_partner_revoked() -> None:
    services = listed()
    services.answer("POST", "ingest", "/v1/admin/partners/bakery/rotate-key", CREATED)
    services.answer(
        "POST", "ingest", "/v1/admin/partners/bakery/revoke", PARTNER | {"active": False}
    )
    async with pages([partners.router], services, who=staff("admin")) as client:
        rotated = await client.post(
            "/console/partners/bakery/rotate-key", data={"csrf_token": CSRF}
        )
        revoked = await client.post("/console/partners/bakery/revoke", data={"csrf_token": CSRF})
    assert rotated.status_code == 200 and "THE_SECRET_SHOWN_ONCE" in rotated.text
    assert revoked.status_code == 303 and revoked.headers["location"].endswith("revoked")
    assert [c.path for c in services.sent("POST", "ingest")] == [
        "/v1/admin/partners/bakery/rotate-key",
        "/v1/admin/partners/bakery/revoke",
    ]


async def test_ingests_refusal_is_shown_next_to_the_form() -> None:
    services = listed()
    problem = {"title": "Conflict", "detail": "partner bakery-2 exists"}
    services.answer("POST", "ingest", "/v1/admin/partners", problem, status=409)
    async with pages([partners.router], services, who=staff("admin")) as client:
        conflict = await client.post("/console/partners", data=FORM)
        bad = await client.post("/console/partners", data=FORM | {"partner_id": "no spaces"})
    assert conflict.status_code == 409 and "partner bakery-2 exists" in conflict.text
    assert bad.status_code == 422 and 'role="alert"' in bad.text


async def test_a_stale_form_is_refused() -> None:
    services = listed()
    async with pages([partners.router], services, who=staff("admin")) as client:
        response = await client.post("/console/partners", data=FORM | {"csrf_token": "x"})
    assert response.status_code == 403 and services.sent("POST", "ingest") == []
