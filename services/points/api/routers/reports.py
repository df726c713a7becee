"""Reports for finance: the points liability, per partner and in total, as of a date."""

from typing import Annotated

from fastapi import APIRouter, Query

from services.points.api.deps import AdminScope, ClockDep, LedgerDep
from services.points.api.replies import problems
from services.points.api.schemas import LiabilityOut, LiabilityReportOut
from services.points.domain.liability import Liability, total_of
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
    instant = as_of or clock.now()
    partners = await ledger.liability(instant)
    return LiabilityReportOut(
        as_of=instant,
        partners=[_out(p) for p in partners],
        total=_out(total_of(partners)),
    )


def _out(liability: Liability) -> LiabilityOut:
    return LiabilityOut(
        partner_id=liability.partner_id,
        outstanding=liability.outstanding,
        in_lots=liability.in_lots,
        debt=liability.debt,
        issued=liability.issued,
        spent=liability.spent,
        expired=liability.expired,
        reversed=liability.reversed,
    )
