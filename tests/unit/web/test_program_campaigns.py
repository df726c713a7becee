"""The console's campaigns page: the list points answered, a new campaign posted with the actor
and the form's Idempotency-Key, points' 422 shown next to the form, the web's own checks, a
campaign ended, and what a viewer, a stale form and a service away get."""

from __future__ import annotations

import re
from pathlib import Path

from services.web.api.i18n import LOCALES, MESSAGES
from services.web.api.routers import campaigns
from tests.support.fakes.web import FakeServices
from tests.support.web_pages import CSRF, pages, staff

CAMPAIGN = {
    "id": "cmp-1",
    "name": "Double points weekend",
    "multiplier": "2",
    "bonus": None,
    "partner_id": "p-1",
    "store_id": None,
    "category": None,
    "starts_at": "2026-12-05T00:00:00Z",
    "ends_at": "2026-12-07T00:00:00Z",
    "validity_days": None,
    "segment": "lifecycle:at_risk",
}
FORM = {
    "csrf_token": CSRF,
    "idempotency_key": "form-key-1",
    "name": "Winter bonus",
    "multiplier": "1.5",
    "bonus": "",
    "starts_at": "2026-12-10T08:00",
    "ends_at": "2026-12-20T20:00",
    "tier": "gold",
    "segment": "",
}


def listed() -> FakeServices:
    services = FakeServices()
    services.answer("GET", "points", "/v1/campaigns", {"items": [CAMPAIGN]})
    return services


async def test_the_page_lists_what_points_answered() -> None:
    services = listed()
    async with pages([campaigns.router], services, who=staff("viewer")) as client:
        response = await client.get("/console/campaigns")
    assert response.status_code == 200
    assert "Double points weekend" in response.text and "lifecycle:at_risk" in response.text
    assert services.calls[0].actor == "staff:alice"
    # A viewer sees the list, not the form nor the end buttons.
    assert 'action="/console/campaigns"' not in response.text
    assert "/console/campaigns/cmp-1/end" not in response.text


async def test_a_manager_sees_the_form_with_a_key_made_for_it() -> None:
    async with pages([campaigns.router], listed(), who=staff("manager")) as client:
        first = await client.get("/console/campaigns")
        second = await client.get("/console/campaigns")
    assert 'name="idempotency_key"' in first.text and 'for="f-name"' in first.text
    key = first.text.split('name="idempotency_key" value="')[1].split('"')[0]
    assert key and key not in second.text


async def test_a_new_campaign_is_posted_with_the_actor_and_the_key() -> None:
    services = listed()
    services.answer("POST", "points", "/v1/campaigns", CAMPAIGN, status=201)
    async with pages([campaigns.router], services, who=staff("manager")) as client:
        response = await client.post("/console/campaigns", data=FORM)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/campaigns?done=program.done.created"
    [call] = services.sent("POST", "points")
    assert call.actor == "staff:alice" and call.idempotency_key == "form-key-1"
    assert call.body == {
        "name": "Winter bonus",
        "multiplier": "1.5",
        "starts_at": "2026-12-10T08:00:00Z",
        "ends_at": "2026-12-20T20:00:00Z",
        "tier": "gold",
    }


async def test_the_notice_after_a_command() -> None:
    async with pages([campaigns.router], listed(), who=staff()) as client:
        done = await client.get("/console/campaigns", params={"done": "program.done.created"})
        odd = await client.get("/console/campaigns", params={"done": "<b>made up</b>"})
    assert 'role="status">Created.' in done.text
    assert "made up" not in odd.text


async def test_points_refusal_is_shown_next_to_the_form_with_what_was_typed() -> None:
    services = listed()
    problem = {"title": "Invalid request", "detail": "ends_at must be after starts_at"}
    services.answer("POST", "points", "/v1/campaigns", problem, status=422)
    async with pages([campaigns.router], services, who=staff("manager")) as client:
        response = await client.post("/console/campaigns", data=FORM)
    assert response.status_code == 422
    assert 'role="alert"' in response.text
    assert "ends_at must be after starts_at" in response.text
    assert 'value="Winter bonus"' in response.text
    assert "Traceback" not in response.text


async def test_the_web_refuses_what_it_can_tell_is_wrong_without_asking() -> None:
    services = listed()
    async with pages([campaigns.router], services, who=staff("manager")) as client:
        no_boost = await client.post("/console/campaigns", data=FORM | {"multiplier": ""})
        bad_tier = await client.post("/console/campaigns", data=FORM | {"tier": "diamond"})
        bad_date = await client.post("/console/campaigns", data=FORM | {"ends_at": "soon"})
    assert {no_boost.status_code, bad_tier.status_code, bad_date.status_code} == {422}
    assert "Give a multiplier, a bonus, or both." in no_boost.text
    assert "Tier" in bad_tier.text and "Ends" in bad_date.text
    assert services.sent("POST", "points") == []


async def test_a_campaign_is_ended() -> None:
    services = listed()
    services.answer("DELETE", "points", "/v1/campaigns/cmp-1", None, status=204)
    async with pages([campaigns.router], services, who=staff("manager")) as client:
        response = await client.post("/console/campaigns/cmp-1/end", data={"csrf_token": CSRF})
    assert response.status_code == 303 and response.headers["location"].endswith("ended")
    [call] = services.sent("DELETE", "points")
    assert call.path == "/v1/campaigns/cmp-1" and call.actor == "staff:alice"


async def test_a_viewer_may_not_post() -> None:
    services = listed()
    async with pages([campaigns.router], services, who=staff("viewer")) as client:
        create = await client.post("/console/campaigns", data=FORM)
        end = await client.post("/console/campaigns/cmp-1/end", data={"csrf_token": CSRF})
    assert create.status_code == 403 and end.status_code == 403
    assert services.sent("POST", "points") == [] and services.sent("DELETE", "points") == []


async def test_a_form_without_the_session_token_is_refused() -> None:
    services = listed()
    async with pages([campaigns.router], services, who=staff("manager")) as client:
        response = await client.post("/console/campaigns", data=FORM | {"csrf_token": "stale"})
    assert response.status_code == 403 and "The form expired" in response.text
    assert services.sent("POST", "points") == []


async def test_points_away_is_a_503_page() -> None:
    services = listed()
    services.down.add("points")
    async with pages([campaigns.router], services, who=staff()) as client:
        response = await client.get("/console/campaigns")
    assert response.status_code == 503 and "points" in response.text


def test_every_word_the_program_pages_name_exists_in_every_language() -> None:
    templates = Path(campaigns.__file__).resolve().parents[2] / "templates" / "console"
    names = [
        "program_macros.html",
        "campaigns.html",
        "rewards.html",
        "rules.html",
        "stamp_cards.html",
        "challenges.html",
        "surprises.html",
        "segments.html",
        "segment.html",
        "partners.html",
        "settlement.html",
        "dead_letters.html",
    ]
    used = {
        key
        for name in names
        for key in re.findall(r"(?<![\w.])t\(\"([a-z_.-]+)\"", (templates / name).read_text())
    }
    used = {key for key in used if not key.endswith(".")}  # t("field." ~ name): below
    used |= {
        f"field.{field}"
        for name in names
        for field in re.findall(
            r"(?:field|choice)\(form, \"([a-z_]+)\"", (templates / name).read_text()
        )
    }
    used |= {f"field.{name}" for name in ("lifecycle", "loyalty_types", "tiers", "from", "to")}
    used |= set(campaigns.DONE)
    # Named by the code: the three rule pages' titles and the use cases' refusals.
    used |= {f"program.{kind}" for kind in ("stamp-cards", "challenges", "surprises")}
    used |= {
        f"program.{key}"
        for key in [
            "invalid",
            "required",
            "nothing_to_change",
            "segment.criteria",
            "segment.not_custom",
            "campaign.boost",
            "reward.one",
            "segment.built_in",
            "segment.custom",
        ]
    }
    assert len(used) > 50
    for language in LOCALES:
        assert not used - set(MESSAGES[language]), language
