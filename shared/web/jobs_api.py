"""`POST /v1/admin/jobs/{name}?as_of=<RFC 3339>`: an operator (the operate role, or admin) runs
a job of this service now.

Apart from shared.runtime.jobs, which knows nothing of HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter

from shared.runtime.jobs import AdvisoryJobLock, JobBusy, parse_rfc3339, run_exclusively
from shared.web.deps import OperateScope, RuntimeDep
from shared.web.problems import Problem

ALL = "all"

jobs_router = APIRouter(tags=["admin"])


@jobs_router.post("/v1/admin/jobs/{name}")
async def run_job(
    name: str, runtime: RuntimeDep, _scope: OperateScope, as_of: str | None = None
) -> dict[str, Any]:
    """Runs the job `name` (or every job of the service, in order, for `all`) as of `as_of`
    (default: now) and answers what each did. Running a job again as of the same instant
    changes nothing."""
    known = {job.name: job for job in runtime.jobs}
    if name == ALL:
        chosen = list(runtime.jobs)
    elif name in known:
        chosen = [known[name]]
    else:
        names = ", ".join([*known, ALL])
        raise Problem(404, "Not found", f"no job {name!r} here; jobs: {names}", slug="unknown-job")
    instant = job_instant(as_of, runtime.clock.now())
    lock = AdvisoryJobLock(runtime.engine)
    summaries = []
    for job in chosen:
        try:
            summaries.append(await run_exclusively(job, runtime.engine, instant, lock))
        except JobBusy:
            raise Problem(
                409,
                "Conflict",
                f"job {job.name!r} is running on another instance; retry once it is done",
                slug="job-running",
                done=summaries,
            ) from None
    return {"as_of": instant.isoformat(), "jobs": summaries}


# The instants a job may be run as of: a job's arithmetic (a retention subtracted, a validity
# added) stays far inside datetime's range, and an admin's typo (year 0001, 9999) is a 422
# naming the range, never a 500 nor a purge of everything. The past is bounded by a fixed
# floor (before the program existed: a run as of then changes nothing, which tests use to
# stay clear of each other's data) or 10 years before now, whichever is earlier; the future
# by 5 years after now: far enough to replay a lot's whole validity and its expiry (points
# expire after 12 months by default; operators and tests run the expiry 13 months ahead),
# near enough that a typo cannot run a job centuries ahead.
AS_OF_FLOOR = datetime(2000, 1, 1, tzinfo=UTC)
MAX_AS_OF_PAST = timedelta(days=3653)  # 10 years
MAX_AS_OF_FUTURE = timedelta(days=1827)  # 5 years


def as_of_range(now: datetime) -> tuple[datetime, datetime]:
    """The earliest and latest instants a job may be run as of, `now` being now."""
    return min(AS_OF_FLOOR, now - MAX_AS_OF_PAST), now + MAX_AS_OF_FUTURE


def job_instant(as_of: str | None, now: datetime) -> datetime:
    """The instant `as_of` names (now when absent); a 422 Problem when it is not an RFC 3339
    timestamp with an offset or lies outside `as_of_range(now)`."""
    if as_of is None:
        return now
    try:
        instant = parse_rfc3339(as_of)
    except ValueError:
        raise Problem(
            422,
            "Invalid request",
            "as_of must be an RFC 3339 timestamp with an offset, e.g. 2025-01-31T00:00:00Z"
            " (write + as %2B in a query string)",
            slug="invalid-request",
        ) from None
    earliest, latest = as_of_range(now)
    # Aware datetimes compare as instants: an offset near datetime's ends cannot overflow.
    if not earliest <= instant <= latest:
        raise Problem(
            422,
            "Invalid request",
            f"as_of must lie between {earliest.isoformat()} and {latest.isoformat()} "
            "(from 2000-01-01, or 10 years before now if earlier, to 5 years after now)",
            slug="invalid-request",
        )
    return instant
