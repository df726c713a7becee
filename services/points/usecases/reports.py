"""Reports for finance: the points liability, per partner and in total, as of a date, with
what each partner honoured; and the settlement between partners over a period."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection

from services.points import ports
from services.points.adapters.repositories.reports import reports_repository
from services.points.api.schemas import (
    LiabilityOut,
    LiabilityReportOut,
    SettlementOut,
    SettlementPairOut,
    SettlementPartnerOut,
)
from services.points.domain.liability import Liability, total_of, with_honoured
from services.points.domain.model import Program
from services.points.domain.settlement import period_flaw, settle
from shared.web.problems import Problem


async def liability_report(
    conn: AsyncConnection, program: Program, as_of: datetime
) -> LiabilityReportOut:
    reports: ports.ReportsRepository = reports_repository(conn)
    partners = with_honoured(await reports.liability(as_of), await reports.honoured(as_of))
    return LiabilityReportOut(
        as_of=as_of,
        partners=[_out(p, program.point_value) for p in partners],
        total=_out(total_of(partners), program.point_value),
        point_value=program.point_value,
        currency=program.currency,
    )


async def settlement_report(
    conn: AsyncConnection, program: Program, start: datetime, end: datetime
) -> SettlementOut:
    """Who owes whom for the points spent in [start, end): 422 for a period that is empty,
    reversed or longer than the bound."""
    flaw = period_flaw(start, end)
    if flaw is not None:
        raise Problem(422, "Invalid period", flaw, slug="invalid-period")
    reports: ports.ReportsRepository = reports_repository(conn)
    settlement = settle(await reports.spent_between(start, end), program.point_value)
    return SettlementOut(
        from_=start,
        to=end,
        point_value=program.point_value,
        currency=program.currency,
        pairs=[
            SettlementPairOut(
                issued_by=p.issued_by, honoured_by=p.honoured_by, points=p.points, value=p.value
            )
            for p in settlement.pairs
        ],
        partners=[
            SettlementPartnerOut(partner_id=p.partner_id, owes=p.owes, is_owed=p.is_owed, net=p.net)
            for p in settlement.partners
        ],
    )


def _out(liability: Liability, point_value: Decimal) -> LiabilityOut:
    return LiabilityOut(
        partner_id=liability.partner_id,
        outstanding=liability.outstanding,
        in_lots=liability.in_lots,
        debt=liability.debt,
        issued=liability.issued,
        spent=liability.spent,
        expired=liability.expired,
        reversed=liability.reversed,
        honoured=liability.honoured,
        honoured_value=liability.honoured * point_value,
        outstanding_value=liability.outstanding * point_value,
    )
