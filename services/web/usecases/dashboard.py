"""The console's dashboard: the program's KPIs over a period, from insights (`GET /v1/kpis`),
shaped for the page and for its two charts (the liability trend, the members by tier)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from services.web.ports import Services, ServiceUnavailable

log = logging.getLogger(__name__)

DEFAULT_DAYS = 30
# Insights takes a period of at most 1096 days (three years).
MAX_DAYS = 1096
TIERS = ("bronze", "silver", "gold", "platinum")


@dataclass(frozen=True)
class Period:
    """Whole UTC days, both ends included."""

    start: date
    end: date

    def params(self, now: datetime) -> dict[str, str]:
        """Insights' [from, to): from the start's midnight to the end's next midnight, or now
        when that is still to come (a trend does not reach into the future)."""
        start = datetime.combine(self.start, time(), tzinfo=UTC)
        end = min(datetime.combine(self.end + timedelta(days=1), time(), tzinfo=UTC), now)
        return {"from": start.isoformat(), "to": end.isoformat()}

    def query(self) -> str:
        return f"from={self.start.isoformat()}&to={self.end.isoformat()}"


def parse_period(start: str | None, end: str | None, today: date) -> Period | None:
    """The period of the dashboard's form (ISO dates, either left empty for its default)."""
    try:
        first = date.fromisoformat(start) if start else None
        last = date.fromisoformat(end) if end else None
    except ValueError:
        return None
    return period_of(first, last, today)


def period_of(start: date | None, end: date | None, today: date) -> Period | None:
    """The period asked for (by default the last 30 days to today); None when it cannot be
    one: a start after its end or after today, or longer than insights allows."""
    end = end or today
    start = start or end - timedelta(days=DEFAULT_DAYS)
    if start > end or start > today or (end - start).days >= MAX_DAYS:
        return None
    return Period(start, end)


@dataclass(frozen=True)
class Kpis:
    active_members: int
    repeat_purchase_rate: Decimal | None
    average_basket: Decimal | None
    issued: int
    redeemed: int
    expired: int
    breakage: Decimal | None
    redemption_rate: Decimal | None
    nps: int | None
    nps_responses: int
    win_back_rate: Decimal | None
    lapsed_at_start: int
    won_back: int
    liability_interval: str  # day or week
    # The points outstanding at the close of each day (or week), by the day it closes.
    liability: tuple[tuple[date, int], ...]
    tiers: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Dashboard:
    period: Period
    kpis: Kpis | None
    # A message key when there are no KPIs to show: insights away, or refusing the period.
    problem: str | None = None

    @property
    def unavailable(self) -> bool:
        return self.problem == "console.kpis.unavailable"


async def dashboard(services: Services, actor: str, period: Period, now: datetime) -> Dashboard:
    """The period's KPIs; insights away or refusing is said, never raised."""
    try:
        answer = await services.get("insights", "/v1/kpis", actor=actor, params=period.params(now))
    except ServiceUnavailable:
        return Dashboard(period, None, "console.kpis.unavailable")
    if not answer.ok or not isinstance(answer.body, dict):
        log.warning("kpis refused", extra={"status": answer.status})
        return Dashboard(period, None, "console.kpis.refused")
    try:
        return Dashboard(period, kpis_of(answer.body))
    except (KeyError, TypeError, ValueError, InvalidOperation) as error:
        log.warning("kpis unreadable", extra={"error": type(error).__name__})
        return Dashboard(period, None, "console.kpis.refused")


def kpis_of(body: dict[str, Any]) -> Kpis:
    points = body["points"]
    nps = body["nps"]
    win_back = body["win_back"]
    tiers = body["tier_distribution"]
    return Kpis(
        active_members=int(body["active_members"]),
        repeat_purchase_rate=_decimal(body.get("repeat_purchase_rate")),
        average_basket=_decimal(body.get("average_basket")),
        issued=int(points["issued"]),
        redeemed=int(points["redeemed"]),
        expired=int(points["expired"]),
        breakage=_decimal(body.get("breakage")),
        redemption_rate=_decimal(body.get("redemption_rate")),
        nps=None if nps.get("score") is None else int(nps["score"]),
        nps_responses=int(nps["responses"]),
        win_back_rate=_decimal(win_back.get("rate")),
        lapsed_at_start=int(win_back["lapsed_at_start"]),
        won_back=int(win_back["won_back"]),
        liability_interval="week" if body.get("liability_interval") == "week" else "day",
        liability=tuple(
            (_closing_day(point["at"]), int(point["points"])) for point in body["liability_trend"]
        ),
        tiers=tuple((name, int(tiers.get(name, 0))) for name in TIERS),
    )


def _closing_day(at: str) -> date:
    """A point is at its bucket's end, the next midnight (or the period's end): the day that
    closes there is the one just before."""
    return (datetime.fromisoformat(at) - timedelta(microseconds=1)).astimezone(UTC).date()


def _decimal(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))
