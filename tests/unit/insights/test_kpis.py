"""The KPIs' arithmetic: the period and its defaults, ratios and their rounding, None where a
denominator is zero, the NPS, the tiers all listed, and a daily or weekly liability trend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.insights.domain.kpis import (
    Counts,
    InvalidPeriod,
    LiabilityPoint,
    NpsCounts,
    Period,
    PointsCounts,
    PurchaseCounts,
    average,
    kpis,
    nps_score,
    period,
    ratio,
    tier_distribution,
    trend_interval,
)
from services.insights.domain.model import Rules
from services.insights.usecases.kpis import _rendered, program_kpis
from shared.web.problems import Problem

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def test_the_period_defaults_to_the_30_days_before_now() -> None:
    assert period(None, None, NOW) == Period(NOW - timedelta(days=30), NOW)


def test_from_defaults_to_30_days_before_to() -> None:
    end = datetime(2025, 1, 1, tzinfo=UTC)
    assert period(None, end, NOW) == Period(end - timedelta(days=30), end)


def test_a_given_period_is_kept() -> None:
    start = datetime(2026, 5, 1, tzinfo=UTC)
    assert period(start, None, NOW) == Period(start, NOW)


@pytest.mark.parametrize("start", [NOW, NOW + timedelta(seconds=1)])
def test_from_must_be_before_to(start: datetime) -> None:
    with pytest.raises(InvalidPeriod, match="before"):
        period(start, NOW, NOW)


def test_a_period_spans_at_most_three_years() -> None:
    assert period(NOW - timedelta(days=1096), NOW, NOW).start == NOW - timedelta(days=1096)
    with pytest.raises(InvalidPeriod, match="1096 days"):
        period(NOW - timedelta(days=1096, microseconds=1), NOW, NOW)


@pytest.mark.parametrize(
    ("span", "interval"),
    [
        (timedelta(hours=1), "day"),
        (timedelta(days=30), "day"),
        (timedelta(days=92), "day"),
        (timedelta(days=92, seconds=1), "week"),
        (timedelta(days=1096), "week"),
    ],
)
def test_the_trend_is_daily_up_to_92_days_then_weekly(span: timedelta, interval: str) -> None:
    assert trend_interval(NOW - span, NOW) == interval
    assert Period(NOW - span, NOW).interval == interval


@pytest.mark.parametrize(
    ("part", "whole", "expected"),
    [
        (1, 3, Decimal("0.3333")),
        (2, 3, Decimal("0.6667")),
        (1, 8, Decimal("0.1250")),
        (1, 20000, Decimal("0.0001")),  # 0.00005: the half rounds up
        (1, 20001, Decimal("0.0000")),
        (0, 5, Decimal("0.0000")),
        (3, 2, Decimal("1.5000")),  # expired may exceed what the period issued
        (5, 0, None),
        (0, 0, None),
    ],
)
def test_a_ratio_has_four_places_and_none_over_zero(
    part: int, whole: int, expected: Decimal | None
) -> None:
    found = ratio(part, whole)
    assert found == expected
    if expected is not None:
        assert str(found) == str(expected)


@pytest.mark.parametrize(
    ("total", "count", "expected"),
    [
        ("10.00", 3, "3.33"),
        ("20.00", 3, "6.67"),
        ("0.05", 2, "0.03"),  # 0.025: the half rounds up
        ("30.00", 2, "15.00"),
        ("0.00", 0, None),
    ],
)
def test_the_average_basket_has_two_places(total: str, count: int, expected: str | None) -> None:
    found = average(Decimal(total), count)
    assert (None if found is None else str(found)) == expected


@pytest.mark.parametrize(
    ("promoters", "detractors", "responses", "expected"),
    [
        (2, 1, 4, 25),
        (1, 0, 3, 33),
        (2, 0, 3, 67),
        (1, 0, 8, 13),  # 12.5: away from zero
        (0, 1, 8, -13),  # -12.5: away from zero
        (0, 3, 3, -100),
        (0, 0, 5, 0),
        (0, 0, 0, None),
    ],
)
def test_the_nps_is_a_whole_number(
    promoters: int, detractors: int, responses: int, expected: int | None
) -> None:
    assert nps_score(promoters, detractors, responses) == expected


def test_every_tier_is_listed_in_order() -> None:
    found = tier_distribution({"gold": 2, "bronze": 5})
    assert found == {"bronze": 5, "silver": 0, "gold": 2, "platinum": 0}
    assert list(found) == ["bronze", "silver", "gold", "platinum"]


def _counts(**overrides: object) -> Counts:
    values: dict[str, object] = {
        "purchases": PurchaseCounts(),
        "points": PointsCounts(),
        "nps": NpsCounts(),
        "tiers": {},
        "liability": [],
    }
    return Counts(**(values | overrides))  # type: ignore[arg-type]


def test_kpis_from_counts() -> None:
    of = Period(NOW - timedelta(days=30), NOW)
    trend = [LiabilityPoint(NOW - timedelta(days=1), 500), LiabilityPoint(NOW, 450)]
    found = kpis(
        of,
        _counts(
            purchases=PurchaseCounts(
                active_members=3,
                repeat_members=1,
                purchases=4,
                net_total=Decimal("90.00"),
                lapsed_at_start=4,
                won_back=1,
            ),
            points=PointsCounts(issued=400, redeemed=100, expired=30, reversed=5, adjusted_out=2),
            nps=NpsCounts(responses=4, promoters=2, passives=1, detractors=1),
            tiers={"silver": 1, "bronze": 2},
            liability=trend,
        ),
    )
    assert found.active_members == 3
    assert found.repeat_purchase_rate == Decimal("0.3333")
    assert found.average_basket == Decimal("22.50")
    assert found.breakage == Decimal("0.0750")
    assert found.redemption_rate == Decimal("0.2500")
    assert found.points.reversed == 5 and found.points.adjusted_out == 2
    assert found.liability_trend == tuple(trend)
    assert found.tier_distribution == {"bronze": 2, "silver": 1, "gold": 0, "platinum": 0}
    assert found.nps.score == 25 and found.nps.counts.passives == 1
    assert (found.win_back.lapsed_at_start, found.win_back.won_back) == (4, 1)
    assert found.win_back.rate == Decimal("0.2500")


def test_an_empty_period_has_counts_of_zero_and_no_ratio() -> None:
    found = kpis(Period(NOW - timedelta(days=1), NOW), _counts())
    assert found.active_members == 0
    assert found.repeat_purchase_rate is None
    assert found.average_basket is None
    assert found.breakage is None and found.redemption_rate is None
    assert found.nps.score is None
    assert found.win_back.rate is None
    assert found.tier_distribution == {"bronze": 0, "silver": 0, "gold": 0, "platinum": 0}


async def test_a_bad_period_is_a_422_before_any_read() -> None:
    start = NOW - timedelta(days=2000)
    with pytest.raises(Problem) as refused:
        await program_kpis(None, Rules(), start, NOW, NOW)  # type: ignore[arg-type]
    assert refused.value.status == 422
    assert "three years" in refused.value.detail


def test_the_answer_writes_ratios_and_money_as_strings() -> None:
    of = Period(datetime(2026, 5, 1, tzinfo=UTC), NOW)
    found = kpis(
        of,
        _counts(
            purchases=PurchaseCounts(
                active_members=2, repeat_members=1, purchases=3, net_total=Decimal("10.00")
            ),
            points=PointsCounts(issued=3, redeemed=1),
            liability=[LiabilityPoint(NOW, 7)],
        ),
    )
    body = _rendered(found).model_dump(mode="json", by_alias=True)
    assert body["period"] == {"from": "2026-05-01T00:00:00Z", "to": "2026-06-01T12:00:00Z"}
    assert body["repeat_purchase_rate"] == "0.5000"
    assert body["average_basket"] == "3.33"
    assert (body["breakage"], body["redemption_rate"]) == ("0.0000", "0.3333")
    assert body["liability_interval"] == "day"
    assert body["liability_trend"] == [{"at": "2026-06-01T12:00:00Z", "points": 7}]
    assert body["tier_distribution"] == {"bronze": 0, "silver": 0, "gold": 0, "platinum": 0}
    assert body["nps"]["score"] is None
    assert body["win_back"] == {"lapsed_at_start": 0, "won_back": 0, "rate": None}
