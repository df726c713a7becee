"""The program's KPIs on the test stack: enrolments, purchases (one partly, one wholly
refunded), points earned, redeemed, reversed, expired and adjusted, a tier change and
feedback published to Kafka as their producers do, consumed by insights, then counted by
`GET /v1/kpis` over a period; and a bad period refused with a 422.

Isolation on a shared stack: every fact here happens in a ten-day period of a random year
between 2001 and 2015 (events and their instants may be that old: shared/bounds.py admits
2000-2999), which no other test writes in; the test picks another should the period already
hold a purchase, points or feedback. What also counts facts from before the period (members
lapsed at its start, the tier distribution, the liability's opening balance) is asserted as
the change from the answer read before publishing."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared.messaging import events
from shared.messaging.connection import client_options
from shared.messaging.events import CloudEvent, new_event
from tests.support import factories
from tests.support.kafka import provision_partners
from tests.support.polling import eventually
from tests.support.services import READER
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

WITHIN = 90.0
DAYS = 10


def _new_id(role: str) -> str:
    return f"insights-kpis-{role}-{uuid.uuid4()}"


async def _kpis(client: httpx.AsyncClient, start: datetime, end: datetime) -> dict[str, Any]:
    answer = await client.get(
        "/v1/kpis", params={"from": start.isoformat(), "to": end.isoformat()}, headers=READER
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def _quiet_period(client: httpx.AsyncClient) -> tuple[datetime, dict[str, Any]]:
    """A period of DAYS days no fact of another test falls in, and its KPIs as they are."""
    rng = random.Random()
    for _ in range(10):
        start = datetime(2001, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(15 * 365))
        body = await _kpis(client, start, start + timedelta(days=DAYS))
        if not body["active_members"] + body["nps"]["responses"] + sum(body["points"].values()):
            return start, body
    raise AssertionError("found no period without facts in 2001-2015")


async def _send(stack: Stack, batch: list[CloudEvent]) -> None:
    """Each event on its topic, keyed by its member, as its producer publishes it."""
    await provision_partners(stack.kafka, batch)
    producer = AIOKafkaProducer(**client_options(stack.kafka), acks="all")
    await producer.start()
    try:
        for event in batch:
            assert event.subject is not None
            await producer.send(event.topic, value=event.to_bytes(), key=event.subject.encode())
        await producer.flush()
    finally:
        await producer.stop()


def _points(payload: events.Payload, customer_id: str, at: datetime) -> CloudEvent:
    return new_event(payload, source=factories.POINTS_SOURCE, subject=customer_id, time=at)


def _facts(start: datetime) -> tuple[list[CloudEvent], dict[str, str]]:
    """Five members' facts around the period (day k of it at noon is `on(k)`): A buys twice
    and goes silver, B was lapsed and comes back with a purchase partly refunded, C stays
    lapsed, D's only purchase is wholly refunded, E bought 30 days before the period."""

    def on(day: int, hour: int = 12) -> datetime:
        return start + timedelta(days=day, hours=hour)

    a, b, c, d, e = (_new_id(role) for role in "abcde")
    late_b = f"p-{uuid.uuid4()}"
    only_d = f"p-{uuid.uuid4()}"
    batch = [
        factories.enrolment(a, at=on(0)),
        factories.enrolment(b, at=on(-200)),
        factories.enrolment(c, at=on(-200)),
        factories.enrolment(d, at=on(1)),
        factories.enrolment(e, at=on(-40)),
        factories.purchase(a, "30.00", at=on(1)),
        factories.purchase(a, "20.00", at=on(2)),
        factories.purchase(b, "50.00", at=on(-120)),
        factories.purchase(b, "40.00", at=on(4), purchase_id=late_b),
        factories.refund(b, late_b, "10.00", at=on(5)),
        factories.purchase(c, "25.00", at=on(-100)),
        factories.purchase(d, "15.00", at=on(3), purchase_id=only_d),
        factories.refund(d, only_d, "15.00", at=on(3, 13)),
        factories.purchase(e, "12.00", at=on(-30)),
        factories.points_earned(e, 70, at=on(-30)),
        factories.points_earned(a, 100, at=on(1)),
        factories.points_redeemed(a, 40, at=on(3)),
        factories.points_earned(b, 50, at=on(4)),
        _points(events.PointsReversed(customer_id=b, points=5, refund_id="r-1"), b, on(5)),
        factories.points_expired(b, 20, at=on(6)),
        _points(events.PointsAdjusted(customer_id=c, points=10, reason="x", actor="t"), c, on(6)),
        _points(events.PointsAdjusted(customer_id=a, points=-5, reason="x", actor="t"), a, on(8)),
        factories.tier_change(a, "silver", at=on(2)),
        factories.feedback(a, "nps", 10, at=on(2)),
        factories.feedback(a, "review", 5, at=on(2)),  # not an NPS answer
        factories.feedback(b, "nps", 7, at=on(5)),
        factories.feedback(c, "nps", 3, at=on(6)),
        factories.feedback(d, "nps", 9, at=on(7)),
    ]
    return batch, {"a": a, "b": b, "c": c, "d": d, "e": e}


# The balance's change at the end of each day of the period: E's 70 before it, then A +100
# (day 1), A -40 (3), B +50 (4), B -5 (5), B -20 and C +10 (6), A -5 (8).
LIABILITY_DELTAS = [70, 170, 170, 130, 180, 175, 165, 165, 160, 160]


def _ratio(part: int, whole: int) -> str | None:
    return None if whole == 0 else f"{part / whole:.4f}"


def _expected(base: dict[str, Any]) -> dict[str, Any]:
    """The answer once this test's facts are in: in-period numbers exact, the others the
    baseline's plus this test's share."""
    lapsed = base["win_back"]["lapsed_at_start"] + 2  # B and C
    won_back = base["win_back"]["won_back"] + 1  # B
    tiers = dict(base["tier_distribution"])
    tiers["bronze"] += 4  # B, C, D, E: no tier change, the entry tier
    tiers["silver"] += 1  # A
    return base | {
        "active_members": 2,  # A and B; D's purchase was wholly refunded
        "repeat_purchase_rate": "0.5000",  # A
        "average_basket": "26.67",  # (30 + 20 + (40 - 10)) / 3
        "points": {"issued": 160, "redeemed": 40, "expired": 20, "reversed": 5, "adjusted_out": 5},
        "breakage": "0.1250",
        "redemption_rate": "0.2500",
        "liability_interval": "day",
        "liability_trend": [
            {"at": point["at"], "points": point["points"] + delta}
            for point, delta in zip(base["liability_trend"], LIABILITY_DELTAS, strict=True)
        ],
        "tier_distribution": tiers,
        "nps": {"responses": 4, "promoters": 2, "passives": 1, "detractors": 1, "score": 25},
        "win_back": {
            "lapsed_at_start": lapsed,
            "won_back": won_back,
            "rate": _ratio(won_back, lapsed),
        },
    }


async def _reaches(
    client: httpx.AsyncClient, start: datetime, end: datetime, expected: dict[str, Any]
) -> None:
    seen: dict[str, Any] = {}

    async def matches() -> bool:
        seen.update(await _kpis(client, start, end))
        return seen == expected

    try:
        await eventually(matches, within=WITHIN, interval=0.5, what="the KPIs of the facts")
    except AssertionError:
        assert seen == expected
        raise


async def test_the_kpis_of_a_period(client: httpx.AsyncClient, stack: Stack) -> None:
    start, base = await _quiet_period(client)
    end = start + timedelta(days=DAYS)
    assert base["liability_interval"] == "day"
    assert [point["at"] for point in base["liability_trend"]] == [
        (start + timedelta(days=day + 1)).isoformat().replace("+00:00", "Z") for day in range(DAYS)
    ]
    long_start = end - timedelta(days=100)
    long_base = await _kpis(client, long_start, end)

    batch, _ = _facts(start)
    await _send(stack, batch)

    await _reaches(client, start, end, _expected(base))
    weekly = await _kpis(client, long_start, end)
    assert weekly["liability_interval"] == "week"
    trend = weekly["liability_trend"]
    assert len(trend) == len(long_base["liability_trend"]) in (15, 16)
    assert trend[-1]["at"] == end.isoformat().replace("+00:00", "Z")
    assert trend[-1]["points"] - long_base["liability_trend"][-1]["points"] == 160
    for point in trend[:-1]:
        assert datetime.fromisoformat(point["at"]).weekday() == 0  # the Monday a week ends at
    assert weekly["active_members"] == 3 + long_base["active_members"]  # E's as well


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ({"from": "2020-01-02T00:00:00Z", "to": "2020-01-01T00:00:00Z"}, "before"),
        ({"from": "2020-01-01T00:00:00Z", "to": "2020-01-01T00:00:00Z"}, "before"),
        ({"from": "2016-01-01T00:00:00Z", "to": "2020-01-01T00:00:00Z"}, "three years"),
        ({"from": "2020-01-01", "to": "2020-02-01T00:00:00Z"}, "from"),
        ({"from": "1999-12-31T00:00:00Z", "to": "2000-01-02T00:00:00Z"}, "from"),
    ],
)
async def test_a_bad_period_is_refused(
    client: httpx.AsyncClient, query: dict[str, str], detail: str
) -> None:
    answer = await client.get("/v1/kpis", params=query, headers=READER)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert detail in answer.json()["detail"]


async def test_the_kpis_need_a_token(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v1/kpis")
    assert answer.status_code == 401
