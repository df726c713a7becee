"""Reports for finance: the points liability, per partner and in total, as of a date."""

from typing import Annotated

from fastapi import APIRouter, Query

from services.points.api.deps import AdminScope, ClockDep, LedgerDep
from services.points.api.problems import problems
from services.points.api.schemas import LiabilityReportOut
from services.points.usecases import reports
from shared.bounds import InstantIn
from shared.web.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1/reports", tags=["reports"], route_class=StrictJsonRoute)


@router.get(
    "/liability",
    response_model=LiabilityReportOut,
    responses=problems(401, 403, 422),
)
async def liability(
    ledger: LedgerDep,
    clock: ClockDep,
    _: AdminScope,
    as_of: Annotated[InstantIn | None, Query()] = None,
) -> LiabilityReportOut:
    return await reports.liability_report(ledger, as_of or clock.now())
