"""The services' health (any staff role): each one ready or not, as `/readyz` says."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.web.api.deps import ServicesDep, StaffDep
from services.web.api.pages import render
from services.web.usecases.health import services_health

router = APIRouter(prefix="/console/health", include_in_schema=False)


@router.get("")
async def health(request: Request, who: StaffDep, services: ServicesDep) -> HTMLResponse:
    found = await services_health(services, who.actor)
    context = {"staff": who, "health": found, "ready": sum(each.ready for each in found)}
    return render(request, "console/health.html", context, csrf_token=who.csrf_token)
