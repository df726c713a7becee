"""Campaigns in the console, and what the console's program pages share: a form's fields read
bounded, the notice after a command (`?done=`), a refusal shown next to the form with the
service's status (422 for a bad field), the Idempotency-Key a create form carries (made when
the form was rendered: a second click of the same form is the same call)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.web.api.deps import CsrfField, ManagerDep, ServicesDep, Staff, StaffDep, check_csrf
from services.web.api.pages import new_form_token, redirect, render
from services.web.usecases import campaigns
from services.web.usecases.campaigns import Outcome

DONE = (
    "program.done.created",
    "program.done.ended",
    "program.done.changed",
    "program.done.revoked",
)
MAX_FORM_FIELDS = 40
MAX_FIELD_LENGTH = 500
DoneQuery = Annotated[str | None, Query(max_length=40)]
FormKey = Annotated[str, Form(alias="idempotency_key", min_length=1, max_length=64)]
RuleId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")]

router = APIRouter(prefix="/console/campaigns", include_in_schema=False)


async def form_fields(request: Request) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The form's text fields (the last of a name) and every value of each name, each value cut
    at a bound far above any field's (the use case refuses a value too long for its field)."""
    form = await request.form(max_fields=MAX_FORM_FIELDS, max_files=0)
    lists: dict[str, list[str]] = {}
    for name, value in form.multi_items():
        if isinstance(value, str) and len(name) <= 64:
            lists.setdefault(name, []).append(value[: MAX_FIELD_LENGTH + 1])
    return {name: values[-1] for name, values in lists.items()}, lists


def done_of(done: str | None) -> str | None:
    return done if done in DONE else None


def program_page(
    request: Request,
    who: Staff,
    template: str,
    context: dict[str, Any],
    *,
    outcome: Outcome | None = None,
    done: str | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    """A program page: its context, the notice, the refusal next to the form (the page's status
    is the refusal's: 422 for a bad field) with the fields as typed, and a new form key."""
    status = 200 if outcome is None or outcome.ok else outcome.status
    values = {
        "staff": who,
        "manager": who.may("manage"),
        "done": done_of(done),
        "problem": None if outcome is None or outcome.ok else outcome,
        "form": form or {},
        "form_key": new_form_token(),
        **context,
    }
    return render(request, template, values, status_code=status, csrf_token=who.csrf_token)


@router.get("")
async def campaigns_page(
    request: Request, who: StaffDep, services: ServicesDep, done: DoneQuery = None
) -> HTMLResponse:
    listing = await campaigns.list_campaigns(services, who.actor)
    return program_page(request, who, "console/campaigns.html", {"listing": listing}, done=done)


@router.post("")
async def create_campaign(
    request: Request, who: ManagerDep, services: ServicesDep, csrf: CsrfField, key: FormKey
) -> Response:
    check_csrf(csrf, who.csrf_token)
    form, _ = await form_fields(request)
    outcome = await campaigns.create_campaign(services, who.actor, form, key)
    if outcome.ok:
        return redirect("/console/campaigns?done=program.done.created")
    listing = await campaigns.list_campaigns(services, who.actor)
    context = {"listing": listing}
    return program_page(request, who, "console/campaigns.html", context, outcome=outcome, form=form)


@router.post("/{campaign_id}/end")
async def end_campaign(
    request: Request, campaign_id: RuleId, who: ManagerDep, services: ServicesDep, csrf: CsrfField
) -> Response:
    check_csrf(csrf, who.csrf_token)
    outcome = await campaigns.end_campaign(services, who.actor, campaign_id)
    if outcome.ok:
        return redirect("/console/campaigns?done=program.done.ended")
    listing = await campaigns.list_campaigns(services, who.actor)
    return program_page(
        request, who, "console/campaigns.html", {"listing": listing}, outcome=outcome
    )
