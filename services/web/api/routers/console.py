"""The program console's dashboard (any staff role): the program's KPIs over a period and two
charts (served by charts.py as images, with their figures in tables below)."""

from collections.abc import Callable
from decimal import Decimal
from typing import Annotated

from babel.numbers import format_percent
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from services.web.api.deps import ClockDep, ServicesDep, StaffDep
from services.web.api.pages import locale_for, render
from services.web.usecases import dashboard as usecases

router = APIRouter(prefix="/console", include_in_schema=False)

# The period's days, ISO (2026-12-01); anything else is said on the page.
FromQuery = Annotated[str | None, Query(alias="from", max_length=32)]
ToQuery = Annotated[str | None, Query(alias="to", max_length=32)]


@router.get("")
async def dashboard(
    request: Request,
    who: StaffDep,
    services: ServicesDep,
    clock: ClockDep,
    start: FromQuery = None,
    end: ToQuery = None,
) -> HTMLResponse:
    now = clock.now()
    period = usecases.parse_period(start, end, now.date())
    context = {"staff": who, "percent": percent_of(locale_for(request))}
    if period is None:
        context |= {"board": None, "start": start or "", "end": end or ""}
        return render(
            request, "console/dashboard.html", context, status_code=422, csrf_token=who.csrf_token
        )
    board = await usecases.dashboard(services, who.actor, period, now)
    context |= {"board": board, "start": period.start.isoformat(), "end": period.end.isoformat()}
    return render(
        request,
        "console/dashboard.html",
        context,
        status_code=503 if board.unavailable else 200,
        csrf_token=who.csrf_token,
    )


def percent_of(locale: str) -> Callable[[Decimal], str]:
    """A ratio (0.1234) as the locale writes a percentage, to a tenth (12.3%, 12,3 %)."""

    def percent(ratio: Decimal) -> str:
        return format_percent(ratio, format="#,##0.0%", locale=locale)

    return percent
