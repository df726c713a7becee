"""The program's KPIs over a period: counted in the database in one snapshot (a few
set-based statements), turned into ratios by the domain."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from services.insights.adapters.repositories.reports import reports_repository
from services.insights.api.schemas import (
    KpisOut,
    LiabilityPointOut,
    NpsKpiOut,
    PeriodOut,
    PointsKpisOut,
    TierDistributionOut,
    WinBackOut,
)
from services.insights.domain import kpis as domain
from services.insights.domain.model import Rules
from shared.storage.transactions import read_snapshot
from shared.web.problems import Problem


async def program_kpis(
    engine: AsyncEngine,
    rules: Rules,
    start: datetime | None,
    end: datetime | None,
    now: datetime,
) -> KpisOut:
    try:
        period = domain.period(start, end, now)
    except domain.InvalidPeriod as error:
        raise Problem(422, "Invalid request", str(error), slug="invalid-request") from None
    lapsed_before = period.start - timedelta(days=rules.lifecycle.lapsed_days)
    async with read_snapshot(engine) as conn:
        reports = reports_repository(conn)
        counts = domain.Counts(
            purchases=await reports.purchase_counts(period.start, period.end, lapsed_before),
            points=await reports.points_counts(period.start, period.end),
            nps=await reports.nps_counts(
                period.start, period.end, domain.NPS_PROMOTER_MIN, domain.NPS_DETRACTOR_MAX
            ),
            tiers=await reports.tier_counts(period.end, rules.entry_tier),
            liability=await reports.liability_trend(period.start, period.end, period.interval),
        )
    return _rendered(domain.kpis(period, counts))


def _ratio(value: object) -> str | None:
    return None if value is None else str(value)


def _rendered(found: domain.Kpis) -> KpisOut:
    points, nps, win_back = found.points, found.nps, found.win_back
    return KpisOut(
        period=PeriodOut(from_=found.period.start, to=found.period.end),
        active_members=found.active_members,
        repeat_purchase_rate=_ratio(found.repeat_purchase_rate),
        average_basket=found.average_basket,
        points=PointsKpisOut(
            issued=points.issued,
            redeemed=points.redeemed,
            expired=points.expired,
            reversed=points.reversed,
            adjusted_out=points.adjusted_out,
        ),
        breakage=_ratio(found.breakage),
        redemption_rate=_ratio(found.redemption_rate),
        liability_interval=found.period.interval,
        liability_trend=[
            LiabilityPointOut(at=point.at, points=point.points) for point in found.liability_trend
        ],
        tier_distribution=TierDistributionOut(**found.tier_distribution),
        nps=NpsKpiOut(
            responses=nps.counts.responses,
            promoters=nps.counts.promoters,
            passives=nps.counts.passives,
            detractors=nps.counts.detractors,
            score=nps.score,
        ),
        win_back=WinBackOut(
            lapsed_at_start=win_back.lapsed_at_start,
            won_back=win_back.won_back,
            rate=_ratio(win_back.rate),
        ),
    )
