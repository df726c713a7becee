"""Preferences: the form shows what notifications holds, saving replaces them (PUT, with an
Idempotency-Key), unsubscribing turns the email channel off and keeps the rest."""

from __future__ import annotations

from services.web.api.routers import wallet_preferences
from tests.support.fakes.web import FakeServices
from tests.support.web_pages import CSRF, member, pages

PREFS = {
    "customer_id": "c-1",
    "channels": {"email": True, "sms": False},
    "quiet_hours": {"start": "21:00", "end": "08:00"},
    "time_zone": "Europe/Rome",
    "locale": "it",
    "updated_at": "2026-11-01T00:00:00+00:00",
}
PATH = r"/v1/customers/c-1/preferences"


def notifications() -> FakeServices:
    services = FakeServices()
    services.answer("GET", "notifications", PATH, PREFS)
    services.answer("PUT", "notifications", PATH, PREFS)
    return services


async def test_the_form_shows_the_member_s_preferences() -> None:
    async with pages([wallet_preferences.router], notifications(), who=member()) as client:
        response = await client.get("/wallet/preferences", params={"lang": "en"})
    page = response.text
    assert response.status_code == 200
    assert 'id="email" name="email" value="true" checked' in page
    assert 'id="sms" name="sms" value="true" aria' in page  # not checked
    assert 'value="21:00"' in page and 'value="08:00"' in page
    assert 'value="Europe/Rome"' in page and '<option value="it" lang="it" selected>' in page
    assert '<label for="quiet_start">' in page and '<label for="time_zone">' in page


async def test_saving_replaces_the_preferences() -> None:
    services = notifications()
    form = {
        "csrf_token": CSRF,
        "email": "true",
        "quiet_start": "22:00",
        "quiet_end": "07:30",
        "time_zone": "Europe/Helsinki",
        "language": "fi",
    }
    async with pages([wallet_preferences.router], services, who=member()) as client:
        response = await client.post("/wallet/preferences", data=form)
    assert response.status_code == 303
    assert response.headers["location"] == "/wallet/preferences?done=wallet.prefs.saved"
    (call,) = services.sent("PUT", "notifications")
    assert call.path == "/v1/customers/c-1/preferences" and call.actor == "member:c-1"
    assert call.idempotency_key
    assert call.body == {
        "channels": {"email": True, "sms": False},
        "quiet_hours": {"start": "22:00", "end": "07:30"},
        "time_zone": "Europe/Helsinki",
        "locale": "fi",
    }


async def test_a_time_zone_notifications_refuses_is_said() -> None:
    services = notifications()
    services.answer("PUT", "notifications", PATH, {"title": "Invalid"}, status=422)
    form = {"csrf_token": CSRF, "quiet_start": "00:00", "quiet_end": "00:00", "time_zone": "Mars/X"}
    async with pages([wallet_preferences.router], services, who=member()) as client:
        response = await client.post("/wallet/preferences?lang=en", data=form)
    assert response.status_code == 422
    assert 'role="alert"' in response.text and "check the time zone" in response.text
    (call,) = services.sent("PUT", "notifications")
    assert call.body is not None and call.body["time_zone"] == "Mars/X"


async def test_unsubscribing_turns_email_off_and_keeps_the_rest() -> None:
    services = notifications()
    async with pages([wallet_preferences.router], services, who=member()) as client:
        response = await client.post("/wallet/unsubscribe", data={"csrf_token": CSRF})
        shown = await client.get(
            "/wallet/preferences", params={"done": "wallet.prefs.unsubscribed", "lang": "en"}
        )
    assert response.headers["location"] == "/wallet/preferences?done=wallet.prefs.unsubscribed"
    (call,) = services.sent("PUT", "notifications")
    assert call.body == {
        "channels": {"email": False, "sms": False},
        "quiet_hours": {"start": "21:00", "end": "08:00"},
        "time_zone": "Europe/Rome",
        "locale": "it",
    }
    assert 'role="status"' in shown.text and "no longer receive" in shown.text


async def test_forms_without_the_session_s_token_are_refused() -> None:
    services = notifications()
    form = {"csrf_token": "forged", "quiet_start": "00:00", "quiet_end": "00:00"}
    async with pages([wallet_preferences.router], services, who=member()) as client:
        saved = await client.post("/wallet/preferences", data=form)
        unsubscribed = await client.post("/wallet/unsubscribe", data={"csrf_token": "forged"})
    assert saved.status_code == 403 and unsubscribed.status_code == 403
    assert services.sent("PUT", "notifications") == []


async def test_notifications_away() -> None:
    services = notifications()
    services.down.add("notifications")
    async with pages([wallet_preferences.router], services, who=member()) as client:
        shown = await client.get("/wallet/preferences", params={"lang": "en"})
        saved = await client.post(
            "/wallet/preferences",
            data={"csrf_token": CSRF, "quiet_start": "00:00", "quiet_end": "00:00"},
        )
    assert shown.status_code == 200 and "unavailable right now: notifications" in shown.text
    assert saved.status_code == 503
