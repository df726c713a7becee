"""The rewards catalogue in the console: the list, a new reward, a change of cost, stock or end,
a reward retired."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.web.api.deps import CsrfField, ManagerDep, ServicesDep, StaffDep, check_csrf
from services.web.api.pages import redirect
from services.web.api.routers.campaigns import DoneQuery, FormKey, RuleId, form_fields, program_page
from services.web.usecases import rewards
from services.web.usecases.campaigns import Outcome

router = APIRouter(prefix="/console/rewards", include_in_schema=False)
TEMPLATE = "console/rewards.html"


@router.get("")
async def rewards_page(
    request: Request, who: StaffDep, services: ServicesDep, done: DoneQuery = None
) -> HTMLResponse:
    listing = await rewards.list_rewards(services, who.actor)
    return program_page(request, who, TEMPLATE, {"listing": listing}, done=done)


async def _after(
    request: Request, who: ManagerDep, services: ServicesDep, outcome: Outcome, done: str
) -> Response:
    if outcome.ok:
        return redirect(f"/console/rewards?done={done}")
    listing = await rewards.list_rewards(services, who.actor)
    form, _ = await form_fields(request)
    return program_page(request, who, TEMPLATE, {"listing": listing}, outcome=outcome, form=form)


@router.post("")
async def create_reward(
    request: Request, who: ManagerDep, services: ServicesDep, csrf: CsrfField, key: FormKey
) -> Response:
    check_csrf(csrf, who.csrf_token)
    form, _ = await form_fields(request)
    outcome = await rewards.create_reward(services, who.actor, form, key)
    return await _after(request, who, services, outcome, "program.done.created")


@router.post("/{reward_id}/change")
async def change_reward(
    request: Request,
    reward_id: RuleId,
    who: ManagerDep,
    services: ServicesDep,
    csrf: CsrfField,
    key: FormKey,
) -> Response:
    check_csrf(csrf, who.csrf_token)
    form, _ = await form_fields(request)
    outcome = await rewards.change_reward(services, who.actor, reward_id, form, key)
    return await _after(request, who, services, outcome, "program.done.changed")


@router.post("/{reward_id}/retire")
async def retire_reward(
    request: Request,
    reward_id: RuleId,
    who: ManagerDep,
    services: ServicesDep,
    csrf: CsrfField,
    key: FormKey,
) -> Response:
    check_csrf(csrf, who.csrf_token)
    outcome = await rewards.retire_reward(services, who.actor, reward_id, key)
    return await _after(request, who, services, outcome, "program.done.ended")
