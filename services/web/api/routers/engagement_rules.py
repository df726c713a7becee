"""Engagement's rules in the console: stamp cards, challenges and surprises, each a list, a
form to make one, and a button that ends one now. One router for the three: the same page
shape, the fields of each kind in its own template."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.web.api.deps import CsrfField, ManagerDep, ServicesDep, Staff, StaffDep, check_csrf
from services.web.api.pages import redirect
from services.web.api.routers.campaigns import DoneQuery, FormKey, RuleId, form_fields, program_page
from services.web.usecases import engagement_rules
from services.web.usecases.campaigns import Listing, Outcome

router = APIRouter(prefix="/console", include_in_schema=False)


def _page(
    request: Request,
    who: Staff,
    kind: str,
    listing: Listing,
    *,
    outcome: Outcome | None = None,
    done: str | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    template = f"console/{kind.replace('-', '_')}.html"
    context = {"listing": listing, "kind": kind}
    return program_page(request, who, template, context, outcome=outcome, done=done, form=form)


async def _list(
    request: Request, kind: str, who: Staff, services: ServicesDep, done: str | None
) -> HTMLResponse:
    listing = await engagement_rules.list_rules(services, who.actor, kind)
    return _page(request, who, kind, listing, done=done)


async def _create(
    request: Request, kind: str, who: Staff, services: ServicesDep, csrf: str, key: str
) -> Response:
    check_csrf(csrf, who.csrf_token)
    form, _ = await form_fields(request)
    outcome = await engagement_rules.create_rule(services, who.actor, kind, form, key)
    if outcome.ok:
        return redirect(f"/console/{kind}?done=program.done.created")
    listing = await engagement_rules.list_rules(services, who.actor, kind)
    return _page(request, who, kind, listing, outcome=outcome, form=form)


async def _end(
    request: Request, kind: str, rule_id: str, who: Staff, services: ServicesDep, csrf: str
) -> Response:
    check_csrf(csrf, who.csrf_token)
    outcome = await engagement_rules.end_rule(services, who.actor, kind, rule_id)
    if outcome.ok:
        return redirect(f"/console/{kind}?done=program.done.ended")
    listing = await engagement_rules.list_rules(services, who.actor, kind)
    return _page(request, who, kind, listing, outcome=outcome)


def _routes(kind: str) -> None:
    """A fixed path per kind (a `{kind}` parameter would catch the console's other pages)."""

    async def rules_page(
        request: Request, who: StaffDep, services: ServicesDep, done: DoneQuery = None
    ) -> HTMLResponse:
        return await _list(request, kind, who, services, done)

    async def create_rule(
        request: Request, who: ManagerDep, services: ServicesDep, csrf: CsrfField, key: FormKey
    ) -> Response:
        return await _create(request, kind, who, services, csrf, key)

    async def end_rule(
        request: Request, rule_id: RuleId, who: ManagerDep, services: ServicesDep, csrf: CsrfField
    ) -> Response:
        return await _end(request, kind, rule_id, who, services, csrf)

    router.add_api_route(f"/{kind}", rules_page, methods=["GET"])
    router.add_api_route(f"/{kind}", create_rule, methods=["POST"])
    router.add_api_route(f"/{kind}/{{rule_id}}/end", end_rule, methods=["POST"])


for _kind in engagement_rules.KINDS:
    _routes(_kind)
