"""The settlement report in the console: a period asked in the query (`?from=&to=`, days in
UTC), the table of what each partner owes and is owed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from services.web.api.deps import ServicesDep, StaffDep
from services.web.api.pages import render
from services.web.usecases import settlement

router = APIRouter(prefix="/console/settlement", include_in_schema=False)


@router.get("")
async def settlement_page(
    request: Request,
    who: StaffDep,
    services: ServicesDep,
    start: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=40)] = None,
) -> HTMLResponse:
    report = await settlement.settlement_report(services, who.actor, start, end)
    outcome = report.outcome
    status = 200 if outcome is None or outcome.ok else outcome.status
    context = {
        "staff": who,
        "report": report,
        "problem": None if outcome is None or outcome.ok else outcome,
        "start": start or "",
        "end": end or "",
    }
    return render(
        request, "console/settlement.html", context, status_code=status, csrf_token=who.csrf_token
    )
