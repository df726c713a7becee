"""Consent on the preferences page: the form shows what ingest holds, saving sends the PUT with
the member's actor and the form's Idempotency-Key, a forged CSRF token changes nothing, and
the page stands when ingest is away."""

from __future__ import annotations

import re

from services.web.api.routers import wallet_preferences
from tests.support.fakes.web import FakeServices
from tests.support.web_pages import CSRF, member, pages

CONSENT = r"/v1/customers/c-1/consent"
PREFS = {
    "customer_id": "c-1",
    "channels": {"email": True, "sms": True},
    "quiet_hours": {"start": "00:00", "end": "00:00"},
    "time_zone": None,
    "locale": None,
    "updated_at": None,
}
KEY = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"


def ingest(email: bool = True, sms: bool = False) -> FakeServices:
    services = FakeServices()
    services.answer("GET", "ingest", CONSENT, {"email": email, "sms": sms, "version": 3})
    services.answer("PUT", "ingest", CONSENT, {"email": False, "sms": True, "version": 4})
    return services


async def test_the_form_shows_the_member_s_consent_with_a_key() -> None:
    services = ingest(email=True, sms=False)
    async with pages([wallet_preferences.router], services, who=member()) as client:
        response = await client.get("/wallet/preferences", params={"lang": "en"})
    page = response.text
    assert response.status_code == 200
    assert 'id="consent_email" name="consent_email" value="true" checked' in page
    assert 'id="consent_sms" name="consent_sms" value="true" aria' in page  # not checked
    assert '<label for="consent_email">' in page and '<label for="consent_sms">' in page
    assert "to the phone number you gave" in page  # what each consent allows
    assert 'action="/wallet/consent"' in page
    key = re.search(r'name="idempotency_key" value="([A-Za-z0-9-]+)"', page)
    assert key is not None and len(key.group(1)) >= 16
    (read,) = services.sent("GET", "ingest")
    assert read.path == "/v1/customers/c-1/consent" and read.actor == "member:c-1"


async def test_the_form_is_in_every_language() -> None:
    async with pages([wallet_preferences.router], ingest(), who=member()) as client:
        for lang, title in (("it", "Il tuo consenso"), ("fi", "Suostumuksesi"), ("pl", "Twoja")):
            response = await client.get("/wallet/preferences", params={"lang": lang})
            assert title in response.text


async def test_saving_sends_the_consent_with_the_member_and_the_form_s_key() -> None:
    services = ingest()
    form = {"csrf_token": CSRF, "idempotency_key": KEY, "consent_sms": "true"}
    async with pages([wallet_preferences.router], services, who=member()) as client:
        response = await client.post("/wallet/consent", data=form)
        shown = await client.get(
            "/wallet/preferences", params={"done": "wallet.consent.saved", "lang": "en"}
        )
    assert response.status_code == 303
    assert response.headers["location"] == "/wallet/preferences?done=wallet.consent.saved"
    (call,) = services.sent("PUT", "ingest")
    assert call.path == "/v1/customers/c-1/consent" and call.actor == "member:c-1"
    assert call.body == {"email": False, "sms": True}
    assert call.idempotency_key == KEY
    assert 'role="status"' in shown.text and "Your consent is saved." in shown.text


async def test_a_refusal_is_said_on_the_page() -> None:
    services = ingest()
    services.answer("PUT", "ingest", CONSENT, {"title": "Conflict"}, status=409)
    form = {"csrf_token": CSRF, "idempotency_key": KEY, "consent_email": "true"}
    async with pages([wallet_preferences.router], services, who=member()) as client:
        response = await client.post("/wallet/consent?lang=en", data=form)
    assert response.status_code == 422
    assert 'role="alert"' in response.text and "already sent with other choices" in response.text


async def test_a_form_without_the_session_s_token_or_a_key_is_refused() -> None:
    services = ingest()
    async with pages([wallet_preferences.router], services, who=member()) as client:
        forged = await client.post(
            "/wallet/consent", data={"csrf_token": "forged", "idempotency_key": KEY}
        )
        keyless = await client.post("/wallet/consent", data={"csrf_token": CSRF})
    assert forged.status_code == 403
    assert keyless.status_code == 422
    assert services.sent("PUT", "ingest") == []


async def test_ingest_away_leaves_the_rest_of_the_page() -> None:
    services = ingest()
    services.answer("GET", "notifications", r"/v1/customers/c-1/preferences", PREFS)
    services.down.add("ingest")
    form = {"csrf_token": CSRF, "idempotency_key": KEY}
    async with pages([wallet_preferences.router], services, who=member()) as client:
        shown = await client.get("/wallet/preferences", params={"lang": "en"})
        saved = await client.post("/wallet/consent", data=form)
    assert shown.status_code == 200
    assert "unavailable right now: ingest" in shown.text
    assert "Your consent cannot be shown right now" in shown.text
    assert 'action="/wallet/consent"' not in shown.text
    assert 'action="/wallet/preferences"' in shown.text  # the rest of the page stands
    assert saved.status_code == 503
