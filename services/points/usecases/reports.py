"""Reports for finance: the points liability, per partner and in total, as of a date."""

from datetime import datetime

from services.points import ports
from services.points.api.schemas import LiabilityOut, LiabilityReportOut
from services.points.domain.liability import Liability, total_of


async def liability_report(ledger: ports.LedgerRepository, as_of: datetime) -> LiabilityReportOut:
    partners = await ledger.liability(as_of)
    return LiabilityReportOut(
        as_of=as_of,
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
