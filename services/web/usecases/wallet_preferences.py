"""The member's message preferences, kept by notifications: the channels they accept (used only
where they also consented at enrolment), quiet hours, time zone and language; and unsubscribe
from the programme's emails (the email channel off, as the one-click link in every email does).
A sign-in link still reaches them: it is a message they ask for. And their consent to email
and SMS, kept in ingest's profile: a change there is a profile change every service follows
(`customer.updated`), made with the console's credential naming the member."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from services.web.ports import Services
from services.web.usecases.wallet import Reading

DEFAULTS: dict[str, Any] = {
    "channels": {"email": True, "sms": True},
    "quiet_hours": {"start": "00:00", "end": "00:00"},
    "time_zone": None,
    "locale": None,
}


@dataclass(frozen=True)
class PreferencesPage:
    preferences: dict[str, Any]
    chosen: bool  # False while the member has chosen nothing (the defaults are shown)
    unavailable: list[str]
    consent: dict[str, bool] | None = None  # None: ingest did not say (away, or no profile)
    consent_key: str = ""  # the consent form's Idempotency-Key: a second submit is the same


@dataclass(frozen=True)
class Choice:
    email: bool
    sms: bool
    quiet_start: str
    quiet_end: str
    time_zone: str | None
    locale: str | None


def _path(customer_id: str) -> str:
    return f"/v1/customers/{customer_id}/preferences"


async def preferences_page(services: Services, actor: str, customer_id: str) -> PreferencesPage:
    reading = Reading(services, actor)
    preferences = await _preferences(reading, customer_id)
    # Notifications' answer carries no consent: ingest keeps it with the profile.
    consent = await reading.body("ingest", _consent_path(customer_id))
    return PreferencesPage(
        preferences=preferences,
        chosen=preferences.get("updated_at") is not None,
        unavailable=reading.unavailable,
        consent=_consent(consent),
        consent_key=str(uuid.uuid4()),
    )


async def _preferences(reading: Reading, customer_id: str) -> dict[str, Any]:
    body = await reading.body("notifications", _path(customer_id))
    return body if isinstance(body, dict) else DEFAULTS


def _consent_path(customer_id: str) -> str:
    return f"/v1/customers/{customer_id}/consent"


def _consent(body: Any) -> dict[str, bool] | None:
    if not isinstance(body, dict):
        return None
    return {"email": body.get("email") is True, "sms": body.get("sms") is True}


async def save_consent(
    services: Services, actor: str, customer_id: str, *, email: bool, sms: bool, key: str
) -> str | None:
    """Sets the member's consent in ingest; None when set (or already so), else the message
    key of why not. The form's key makes a second submit of one form the same change."""
    answer = await services.send(
        "PUT",
        "ingest",
        _consent_path(customer_id),
        actor=actor,
        body={"email": email, "sms": sms},
        idempotency_key=key,
    )
    if answer.ok:
        return None
    # 409: the key came with another choice (a form sent twice, changed between): reload.
    return "wallet.consent.stale" if answer.status == 409 else "wallet.consent.failed"


async def save_preferences(
    services: Services, actor: str, customer_id: str, choice: Choice
) -> str | None:
    """Replaces the member's preferences; None when saved, else the message key of why not."""
    body = {
        "channels": {"email": choice.email, "sms": choice.sms},
        "quiet_hours": {"start": choice.quiet_start, "end": choice.quiet_end},
        "time_zone": choice.time_zone,
        "locale": choice.locale,
    }
    answer = await services.send(
        "PUT",
        "notifications",
        _path(customer_id),
        actor=actor,
        body=body,
        idempotency_key=str(uuid.uuid4()),
    )
    if answer.ok:
        return None
    return "wallet.prefs.invalid" if answer.status == 422 else "wallet.prefs.failed"


async def unsubscribe(services: Services, actor: str, customer_id: str) -> str | None:
    """The email channel off, the rest as the member chose it."""
    reading = Reading(services, actor)
    now = await _preferences(reading, customer_id)
    if reading.unavailable:
        return "wallet.prefs.failed"
    quiet = now.get("quiet_hours") or DEFAULTS["quiet_hours"]
    choice = Choice(
        email=False,
        sms=bool((now.get("channels") or {}).get("sms", True)),
        quiet_start=str(quiet["start"]),
        quiet_end=str(quiet["end"]),
        time_zone=now.get("time_zone"),
        locale=now.get("locale"),
    )
    return await save_preferences(services, actor, customer_id, choice)
