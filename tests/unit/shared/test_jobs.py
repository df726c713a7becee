"""The jobs mechanism on fakes: the schedule, the lock that lets one instance run a job, and
the `as_of` the admin endpoint accepts. The advisory lock and the purges themselves run on
the real PostgreSQL in tests/integration/core/test_relay_and_jobs.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from shared.clock import FixedClock
from shared.runtime.jobs import JobBusy, JobScheduler, parse_rfc3339, run_exclusively
from tests.support.fakes.runtime import FakeLock, RecordingJob

NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
ENGINE = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")


async def test_a_round_runs_every_job_in_order_as_of_now() -> None:
    runs: list[tuple[str, datetime]] = []
    jobs = [RecordingJob("first", runs), RecordingJob("second", runs)]
    scheduler = JobScheduler(ENGINE, jobs, FixedClock(NOW), interval=60, lock=FakeLock())

    summaries = await scheduler.run_round()

    assert runs == [("first", NOW), ("second", NOW)]
    assert summaries == [{"job": "first", "deleted": 7}, {"job": "second", "deleted": 7}]


async def test_a_job_locked_by_another_instance_is_skipped_and_the_rest_still_run() -> None:
    runs: list[tuple[str, datetime]] = []
    jobs = [RecordingJob("busy", runs), RecordingJob("free", runs)]
    scheduler = JobScheduler(ENGINE, jobs, FixedClock(NOW), interval=60, lock=FakeLock({"busy"}))

    summaries = await scheduler.run_round()

    assert runs == [("free", NOW)]
    assert [s["job"] for s in summaries] == ["free"]


async def test_a_failing_job_does_not_stop_the_others_and_releases_its_lock() -> None:
    runs: list[tuple[str, datetime]] = []
    lock = FakeLock()
    jobs = [RecordingJob("broken", runs, fails=True), RecordingJob("fine", runs)]
    scheduler = JobScheduler(ENGINE, jobs, FixedClock(NOW), interval=60, lock=lock)

    summaries = await scheduler.run_round()

    assert runs == [("broken", NOW), ("fine", NOW)]
    assert [s["job"] for s in summaries] == ["fine"]
    assert lock.held == []


async def test_the_scheduler_runs_a_round_at_start_and_stops_while_waiting() -> None:
    runs: list[tuple[str, datetime]] = []
    job = RecordingJob("only", runs)
    scheduler = JobScheduler(ENGINE, [job], FixedClock(NOW), interval=3600, lock=FakeLock())

    running = asyncio.create_task(scheduler.run())
    await asyncio.wait_for(job.ran.wait(), timeout=5)
    await scheduler.stop()
    await asyncio.wait_for(running, timeout=5)

    assert runs == [("only", NOW)]


async def test_run_exclusively_refuses_while_another_instance_holds_the_lock() -> None:
    runs: list[tuple[str, datetime]] = []

    with pytest.raises(JobBusy):
        await run_exclusively(RecordingJob("busy", runs), ENGINE, NOW, FakeLock({"busy"}))
    assert runs == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-22T10:15:00Z", NOW),
        ("2026-11-22t10:15:00z", NOW),
        ("2026-11-22T11:15:00+01:00", NOW),
        ("2026-11-22 10:15:00+00:00", NOW),
        ("2026-11-22T10:15:00.123456789Z", NOW + timedelta(microseconds=123456)),
    ],
)
def test_rfc3339_timestamps_are_read_with_their_offset(text: str, expected: datetime) -> None:
    parsed = parse_rfc3339(text)

    assert parsed == expected
    assert parsed.utcoffset() is not None


def test_an_offset_is_kept_not_dropped() -> None:
    assert parse_rfc3339("2026-11-22T12:15:00+02:00").tzinfo == timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-22T10:15:00",  # no offset: which instant?
        "2026-11-22",
        "1795342500",
        "2026-11-22T10:15:00 00:00",  # a "+" a query string turned into a space
        "2026-13-22T10:15:00Z",
        "yesterday",
        "",
    ],
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rfc3339(text)
