"""Segments in the console: the list (built in and custom), a new custom segment, a custom one
deleted, and a segment's members a page at a time (`?cursor=`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.web.api.deps import CsrfField, ManagerDep, ServicesDep, StaffDep, check_csrf
from services.web.api.pages import redirect, render
from services.web.api.routers.campaigns import DoneQuery, FormKey, form_fields, program_page
from services.web.usecases import segments
from services.web.usecases.campaigns import TIERS

router = APIRouter(prefix="/console/segments", include_in_schema=False)
TEMPLATE = "console/segments.html"
Name = Annotated[str, Path(max_length=72)]
Cursor = Annotated[str | None, Query(max_length=64)]
CHOICES = ("lifecycle", "loyalty_types", "tiers")


@router.get("")
async def segments_page(
    request: Request, who: StaffDep, services: ServicesDep, done: DoneQuery = None
) -> HTMLResponse:
    listing = await segments.list_segments(services, who.actor)
    context = {"listing": listing, "choices": {}, "options": _options()}
    return program_page(request, who, TEMPLATE, context, done=done)


def _options() -> dict[str, tuple[str, ...]]:
    return {
        "lifecycle": segments.STAGES,
        "loyalty_types": segments.LOYALTY_TYPES,
        "tiers": TIERS,
    }


@router.post("")
async def create_segment(
    request: Request, who: ManagerDep, services: ServicesDep, csrf: CsrfField, key: FormKey
) -> Response:
    check_csrf(csrf, who.csrf_token)
    form, lists = await form_fields(request)
    choices = {name: lists.get(name, [])[:10] for name in CHOICES}
    outcome = await segments.create_segment(services, who.actor, form, choices, key)
    if outcome.ok:
        return redirect("/console/segments?done=program.done.created")
    listing = await segments.list_segments(services, who.actor)
    context = {"listing": listing, "choices": choices, "options": _options()}
    return program_page(request, who, TEMPLATE, context, outcome=outcome, form=form)


@router.post("/{name}/delete")
async def delete_segment(
    request: Request, name: Name, who: ManagerDep, services: ServicesDep, csrf: CsrfField
) -> Response:
    check_csrf(csrf, who.csrf_token)
    outcome = await segments.delete_segment(services, who.actor, name)
    if outcome.ok:
        return redirect("/console/segments?done=program.done.ended")
    listing = await segments.list_segments(services, who.actor)
    context = {"listing": listing, "choices": {}, "options": _options()}
    return program_page(request, who, TEMPLATE, context, outcome=outcome)


@router.get("/{name}")
async def segment_page(
    request: Request, name: Name, who: StaffDep, services: ServicesDep, cursor: Cursor = None
) -> HTMLResponse:
    segment, members = await segments.segment_members(services, who.actor, name, cursor)
    context = {"staff": who, "name": name, "segment": segment, "members": members}
    status = 200 if segment.ok else segment.status
    return render(
        request, "console/segment.html", context, status_code=status, csrf_token=who.csrf_token
    )
