"""The dead letters page: each service's counters of what its consumers dead-lettered, by topic
and reason, and how to look at the messages (the web cannot read Kafka)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.web.api.deps import ServicesDep, StaffDep
from services.web.api.pages import render
from services.web.usecases import dead_letters

router = APIRouter(prefix="/console/dead-letters", include_in_schema=False)


@router.get("")
async def dead_letters_page(request: Request, who: StaffDep, services: ServicesDep) -> HTMLResponse:
    found = await dead_letters.dead_letters(services, who.actor)
    context = {"staff": who, "found": found}
    return render(request, "console/dead_letters.html", context, csrf_token=who.csrf_token)
