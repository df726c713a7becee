"""`POST /v1/admin/jobs/{name}?as_of=<RFC 3339>`: an admin runs a job of this service now.

Apart from shared.runtime.jobs, which knows nothing of HTTP."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from shared.runtime.jobs import AdvisoryJobLock, JobBusy, parse_rfc3339, run_exclusively
from shared.web.deps import AdminScope, RuntimeDep
from shared.web.problems import Problem

ALL = "all"

jobs_router = APIRouter(tags=["admin"])


@jobs_router.post("/v1/admin/jobs/{name}")
async def run_job(
    name: str, runtime: RuntimeDep, _scope: AdminScope, as_of: str | None = None
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
    if as_of is None:
        instant = runtime.clock.now()
    else:
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
