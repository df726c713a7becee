"""Birthday rewards on the test stack's Kafka and PostgreSQL: the configured reward over the
admin API, members' birthdays followed from their profiles (an update moving one too), and
the job `birthday-rewards` (through its admin endpoint) granting it to exactly the members
whose birthday it is in their own time zone, once per year whatever reruns it.

The job runs as of an instant months ahead, on a day no other test's members are born on, so
the stack's other members do not matter; assertions are on this test's members only. The
reward is stopped at the end: the job as of now grants nothing to anyone's members."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.engagement.domain.birthdays import grant_id, year_counted
from shared.messaging import events
from tests.integration.engagement.support import WITHIN, events_reach, new_id
from tests.integration.tiers.test_tiers import send_all
from tests.support import factories
from tests.support.polling import eventually
from tests.support.services import ADMIN, READER
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

REWARDED = (events.ENGAGEMENT_REWARDED,)
PATH = "/v1/birthday-reward"
KIRITIMATI, LOS_ANGELES, ROME = "Pacific/Kiritimati", "America/Los_Angeles", "Europe/Rome"
UNKNOWN = "Mars/Olympus_Mons"
# Birthdays other tests give their members, and the days the job runs as of at scale
# (test_birthdays_at_scale): never near this test's day.
TAKEN = {(4, 23), (7, 1), (7, 2), (3, 9), (3, 10), (3, 11)}


def job_day() -> date:
    """A day months ahead whose neighbours are no other test's members' birthdays, nor 29
    February, nor at a year's end."""
    day = (datetime.now(UTC) + timedelta(days=150)).date()
    while any(
        ((d.month, d.day) in TAKEN or (d.month, d.day) in ((2, 29), (12, 31), (1, 1)))
        for d in (day + timedelta(days=n) for n in range(-2, 6))
    ):
        day += timedelta(days=9)
    return day


def born(day: date) -> date:
    return date(1990, day.month, day.day)


@pytest.fixture
async def birthday_reward(client: httpx.AsyncClient) -> AsyncIterator[None]:
    answer = await client.put(PATH, json={"reward": {"points": 42}}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    try:
        yield
    finally:
        assert (await client.delete(PATH, headers=ADMIN)).status_code == 204


async def run_job(client: httpx.AsyncClient, as_of: datetime) -> dict[str, object]:
    answer = await client.post(
        "/v1/admin/jobs/birthday-rewards", params={"as_of": as_of.isoformat()}, headers=ADMIN
    )
    assert answer.status_code == 200, answer.text
    [summary] = answer.json()["jobs"]
    assert summary["job"] == "birthday-rewards"
    return dict(summary)


async def birthdays_of(engine: AsyncEngine, members: list[str]) -> dict[str, tuple[object, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text(
                "SELECT customer_id, birthday_month, birthday_day, time_zone FROM members "
                "WHERE customer_id = ANY(:ids)"
            ),
            {"ids": members},
        )
    return {row.customer_id: tuple(row)[1:] for row in rows}


async def grants_of(engine: AsyncEngine, members: list[str]) -> dict[str, list[tuple[int, str]]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.text(
                "SELECT customer_id, year, grant_id FROM birthday_grants "
                "WHERE customer_id = ANY(:ids) ORDER BY customer_id, year"
            ),
            {"ids": members},
        )
    found: dict[str, list[tuple[int, str]]] = {}
    for row in rows:
        found.setdefault(row.customer_id, []).append((row.year, row.grant_id))
    return found


async def test_the_birthday_reward_is_set_read_refused_when_invalid_and_stopped(
    client: httpx.AsyncClient,
) -> None:
    for body, field in (
        ({"reward": {"points": 5, "reward_id": "cake"}}, "reward"),
        ({"reward": {"points": 0}}, "points"),
        ({"reward": {"points": 5}, "min_tier": "diamond"}, "min_tier"),
        ({"reward": {"points": 5}, "colour": "red"}, "colour"),
    ):
        refused = await client.put(PATH, json=body, headers=ADMIN)
        assert refused.status_code == 422, refused.text
        assert field in refused.text
    assert (
        await client.put(PATH, json={"reward": {"points": 5}}, headers=READER)
    ).status_code == 403
    put = await client.put(
        PATH, json={"reward": {"reward_id": "birthday-cake"}, "min_tier": "gold"}, headers=ADMIN
    )
    assert put.status_code == 200, put.text
    shown = await client.get(PATH, headers=ADMIN)
    assert shown.json() == {
        "reward": {"points": None, "reward_id": "birthday-cake"},
        "min_tier": "gold",
    }
    assert (await client.delete(PATH, headers=ADMIN)).status_code == 204
    assert (await client.get(PATH, headers=ADMIN)).status_code == 404
    assert (await client.delete(PATH, headers=ADMIN)).status_code == 204


async def test_the_job_rewards_the_members_whose_birthday_it_is_in_their_zone_once_a_year(
    stack: Stack, client: httpx.AsyncClient, engine: AsyncEngine, birthday_reward: None
) -> None:
    day = job_day()
    # 11:00 UTC: already the next day in Kiritimati (UTC+14), still `day` in Los Angeles.
    as_of = datetime(day.year, day.month, day.day, 11, 0, tzinfo=UTC)
    ids = {
        role: new_id(f"bd-{role[:10]}")
        for role in (
            "kiritimati",
            "la",
            "unknown-zone",
            "moved-here",
            "la-tomorrow",
            "rome-yesterday",
            "moved-away",
        )
    }
    tomorrow, yesterday = day + timedelta(days=1), day - timedelta(days=1)
    profiles = {
        "kiritimati": (born(tomorrow), KIRITIMATI),
        "la": (born(day), LOS_ANGELES),
        "unknown-zone": (born(day), UNKNOWN),  # counts as UTC
        "moved-here": (born(day + timedelta(days=5)), ROME),
        "la-tomorrow": (born(tomorrow), LOS_ANGELES),
        "rome-yesterday": (born(yesterday), ROME),
        "moved-away": (born(day), "UTC"),
    }
    now = datetime.now(UTC)
    batch = [
        factories.enrolment(ids[role], at=now, birthday=birthday, time_zone=zone, version=1)
        for role, (birthday, zone) in profiles.items()
    ]
    batch += [
        factories.profile_update(
            ids["moved-here"], at=now, birthday=born(day), time_zone=ROME, version=2
        ),
        factories.profile_update(
            ids["moved-away"], at=now, birthday=born(day + timedelta(days=3)), version=2
        ),
    ]
    await send_all(stack, batch)
    members = list(ids.values())

    async def followed() -> dict[str, tuple[object, ...]] | None:
        found = await birthdays_of(engine, members)
        moved = (found.get(ids["moved-here"]), found.get(ids["moved-away"]))
        after = ((day.month, day.day, ROME), born(day + timedelta(days=3)).day)
        done = len(found) == len(members) and moved[0] == after[0]
        return found if done and moved[1] is not None and moved[1][1] == after[1] else None

    seen = await eventually(followed, within=WITHIN, what="the members' birthdays")
    assert seen[ids["moved-here"]] == (day.month, day.day, ROME)
    assert seen[ids["unknown-zone"]] == (day.month, day.day, UNKNOWN)

    first = await run_job(client, as_of)
    assert first["configured"] is True
    granted = await grants_of(engine, members)
    rewarded = {"kiritimati", "la", "unknown-zone", "moved-here"}
    zones = {role: zone for role, (_, zone) in profiles.items()}
    assert granted == {
        ids[role]: [(year := year_counted(as_of, zones[role]), grant_id(ids[role], year))]
        for role in rewarded
    }
    assert int(str(first["rewards"])) >= len(rewarded)

    # Again as of the same instant: nothing more for these members.
    await run_job(client, as_of)
    assert await grants_of(engine, members) == granted

    for role in rewarded:
        [event] = await events_reach(stack, ids[role], REWARDED, 1)
        grant = events.EngagementRewarded.model_validate(event.data)
        assert (grant.reason, grant.points, grant.purchase_id, grant.granted_at) == (
            "birthday",
            42,
            None,
            as_of,
        )
        assert grant.grant_id == granted[ids[role]][0][1]

    # A year on, Los Angeles' member again, once more: the first year's reward was sent once.
    next_year = as_of.replace(year=as_of.year + 1)
    await run_job(client, next_year)
    events_of_la = await events_reach(stack, ids["la"], REWARDED, 2)
    assert [e.data["grant_id"] for e in events_of_la] == [
        grant_id(ids["la"], day.year),
        grant_id(ids["la"], day.year + 1),
    ]

    # Erased, a member loses the birthday and the grants with the rest.
    gone = ids["kiritimati"]
    await send_all(stack, [factories.erasure(gone, at=datetime.now(UTC))])

    async def erased() -> bool:
        return not await birthdays_of(engine, [gone]) and not await grants_of(engine, [gone])

    await eventually(erased, within=WITHIN, what=f"{gone} erased")
