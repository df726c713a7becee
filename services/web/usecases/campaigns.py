"""Points campaigns in the console (points `GET/POST /v1/campaigns`, `DELETE /v1/campaigns/{id}`),
and what every program page of the console shares: a service's answer turned into what the page
says (`Outcome`, a list's `Listing`) and the checks of a form's fields (`Fields`). A 4xx from a
service is never raised: the page shows its problem's `detail` next to the form."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.web.ports import Answer, Services

MAX_DETAIL = 500
MAX_ITEMS = 500
MAX_FIELD = 500
TIERS = ("bronze", "silver", "gold", "platinum")
# The same spellings the services accept (points' and insights' schemas): refused here first.
MULTIPLIER = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,2})?$")
IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")
SEGMENT = re.compile(r"^(?:(?:loyalty|lifecycle|tier):)?[a-z0-9][a-z0-9_-]{0,62}$")
PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f-\x9f]*$")


@dataclass(frozen=True)
class Outcome:
    """What a command came to: a 2xx with the service's body, or a refusal the page shows
    (the service's problem `detail`, or a message key of the web's own check of `field`)."""

    status: int
    body: Any = None
    detail: str | None = None
    message_key: str | None = None
    field: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class Listing:
    """A list page's rows, or why there are none (a service's refusal)."""

    items: list[dict[str, Any]] = field(default_factory=list)
    detail: str | None = None
    next_cursor: str | None = None


class FormInvalid(Exception):
    """A field the web can tell is wrong before asking the service (422 page)."""

    def __init__(self, field: str, message_key: str = "program.invalid") -> None:
        super().__init__(field)
        self.field = field
        self.message_key = message_key


def problem_detail(answer: Answer) -> str:
    """A refusal's `detail` (else its `title`), bounded: never anything but the service's words."""
    body = answer.body if isinstance(answer.body, Mapping) else {}
    text = body.get("detail") or body.get("title") or f"HTTP {answer.status}"
    return str(text)[:MAX_DETAIL]


def outcome_of(answer: Answer) -> Outcome:
    if answer.ok:
        return Outcome(answer.status, body=answer.body)
    return Outcome(answer.status, detail=problem_detail(answer))


def refused(error: FormInvalid) -> Outcome:
    return Outcome(422, message_key=error.message_key, field=error.field)


def listing_of(answer: Answer, key: str = "items") -> Listing:
    if not answer.ok:
        return Listing(detail=problem_detail(answer))
    body = answer.body if isinstance(answer.body, Mapping) else {}
    items = [item for item in body.get(key, [])[:MAX_ITEMS] if isinstance(item, Mapping)]
    cursor = body.get("next_cursor")
    return Listing([dict(item) for item in items], next_cursor=str(cursor) if cursor else None)


class Fields:
    """A form's fields as typed (strings, already bounded in length by the router), checked
    and turned into a service's JSON body; `FormInvalid` names the first wrong one."""

    def __init__(self, form: Mapping[str, str]) -> None:
        self.form = form

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = (self.form.get(name) or "").strip()
        if not value:
            if required:
                raise FormInvalid(name, "program.required")
            return None
        if len(value) > MAX_FIELD or not PRINTABLE.fullmatch(value):
            raise FormInvalid(name)
        return value

    def matching(
        self, name: str, pattern: re.Pattern[str], *, required: bool = False
    ) -> str | None:
        value = self.text(name, required=required)
        if value is not None and not pattern.fullmatch(value):
            raise FormInvalid(name)
        return value

    def whole(self, name: str, low: int, high: int, *, required: bool = False) -> int | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        if not re.fullmatch(r"[0-9]{1,10}", value) or not low <= int(value) <= high:
            raise FormInvalid(name)
        return int(value)

    def choice(self, name: str, choices: tuple[str, ...], *, required: bool = False) -> str | None:
        value = self.text(name, required=required)
        if value is not None and value not in choices:
            raise FormInvalid(name)
        return value

    def instant(self, name: str, *, required: bool = False) -> str | None:
        """A `datetime-local` field, in UTC (the form says so), as RFC 3339 with its `Z`."""
        value = self.text(name, required=required)
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise FormInvalid(name) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def without_empty(body: Mapping[str, Any]) -> dict[str, Any]:
    """A body without the fields left empty (the service's default applies)."""
    return {name: value for name, value in body.items() if value is not None}


def scope_of(fields: Fields) -> dict[str, Any]:
    """Where and to whom a rule applies: partner, store, category, tier and segment."""
    return {
        "partner_id": fields.matching("partner_id", IDENTIFIER),
        "store_id": fields.matching("store_id", IDENTIFIER),
        "category": fields.text("category"),
        "tier": fields.choice("tier", TIERS),
        "segment": fields.matching("segment", SEGMENT),
    }


async def list_campaigns(services: Services, actor: str) -> Listing:
    return listing_of(await services.get("points", "/v1/campaigns", actor=actor))


def campaign_body(form: Mapping[str, str]) -> dict[str, Any]:
    fields = Fields(form)
    body = {
        "name": fields.text("name", required=True),
        "multiplier": fields.matching("multiplier", MULTIPLIER),
        "bonus": fields.whole("bonus", 1, 1_000_000),
        "starts_at": fields.instant("starts_at", required=True),
        "ends_at": fields.instant("ends_at", required=True),
        "validity_days": fields.whole("validity_days", 1, 3650),
        **scope_of(fields),
    }
    if body["multiplier"] is None and body["bonus"] is None:
        raise FormInvalid("multiplier", "program.campaign.boost")
    return without_empty(body)


async def create_campaign(
    services: Services, actor: str, form: Mapping[str, str], idempotency_key: str
) -> Outcome:
    try:
        body = campaign_body(form)
    except FormInvalid as error:
        return refused(error)
    answer = await services.send(
        "POST", "points", "/v1/campaigns", actor=actor, body=body, idempotency_key=idempotency_key
    )
    return outcome_of(answer)


async def end_campaign(services: Services, actor: str, campaign_id: str) -> Outcome:
    return outcome_of(
        await services.send("DELETE", "points", f"/v1/campaigns/{campaign_id}", actor=actor)
    )
