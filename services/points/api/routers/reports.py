"""Reports for finance: the points liability, per partner and in total, as of a date; the
settlement between partners over a period."""

from typing import Annotated

from fastapi import APIRouter, Query

from services.points.api.deps import AdminScope, ClockDep, ProgramDep
from services.points.api.problems import problems
from services.points.api.schemas import LiabilityReportOut, SettlementOut
from services.points.usecases import reports
from shared.bounds import InstantIn
from shared.web.deps import ConnectionDep
from shared.web.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1/reports", tags=["reports"], route_class=StrictJsonRoute)


@router.get(
    "/liability",
    response_model=LiabilityReportOut,
    responses=problems(401, 403, 422),
)
async def liability(
    conn: ConnectionDep,
    program: ProgramDep,
    clock: ClockDep,
    _: AdminScope,
    as_of: Annotated[InstantIn | None, Query()] = None,
) -> LiabilityReportOut:
    return await reports.liability_report(conn, program, as_of or clock.now())


@router.get(
    "/settlement",
    response_model=SettlementOut,
    responses=problems(401, 403, 422),
)
async def settlement(
    conn: ConnectionDep,
    program: ProgramDep,
    _: AdminScope,
    start: Annotated[InstantIn, Query(alias="from")],
    end: Annotated[InstantIn, Query(alias="to")],
) -> SettlementOut:
    return await reports.settlement_report(conn, program, start, end)
