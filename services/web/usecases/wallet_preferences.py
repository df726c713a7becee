"""The member's message preferences, kept by notifications: the channels they accept (used only
where they also consented at enrolment), quiet hours, time zone and language; and unsubscribe
from the programme's emails (the email channel off, as the one-click link in every email does).
A sign-in link still reaches them: it is a message they ask for."""

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
    body = await reading.body("notifications", _path(customer_id))
    preferences: dict[str, Any] = body if isinstance(body, dict) else DEFAULTS
    return PreferencesPage(
        preferences=preferences,
        chosen=preferences.get("updated_at") is not None,
        unavailable=reading.unavailable,
    )


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
    page = await preferences_page(services, actor, customer_id)
    if page.unavailable:
        return "wallet.prefs.failed"
    now = page.preferences
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
