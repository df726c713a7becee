"""Time-driven jobs: run on a schedule by one instance at a time across replicas, and by an
admin on demand (`POST /v1/admin/jobs/{name}`, shared.web.jobs_api).

A job is given the instant it runs as of, so running it again for the same instant changes
nothing, and a test or an operator can run it as of any time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import Clock
from shared.observability.metrics import JOB_LAST_SUCCESS, JOB_RUNS, JOB_SECONDS
from shared.storage.locks import lock_name, try_lock_for_session, unlock

log = logging.getLogger(__name__)


class Job(Protocol):
    """`run` returns a JSON-able summary of what it did (counts, the cut-off it used)."""

    @property
    def name(self) -> str: ...

    async def run(self, engine: AsyncEngine, as_of: datetime) -> dict[str, Any]: ...


class JobLock(Protocol):
    def hold(self, job_name: str) -> contextlib.AbstractAsyncContextManager[bool]:
        """Yields True while this instance holds the job's lock, False when another one does."""


class AdvisoryJobLock:
    """A PostgreSQL session advisory lock per job name, on a connection held for the run, so
    the lock lives exactly as long as the run (or the connection, should this process die)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @contextlib.asynccontextmanager
    async def hold(self, job_name: str) -> AsyncIterator[bool]:
        name = lock_name("job", job_name)
        async with self._engine.connect() as conn:
            locked = await try_lock_for_session(conn, name)
            await conn.commit()
            try:
                yield locked
            finally:
                if locked:
                    await unlock(conn, name)
                    await conn.commit()


class JobBusy(Exception):
    """Another instance is running this job right now."""


async def run_exclusively(
    job: Job, engine: AsyncEngine, as_of: datetime, lock: JobLock
) -> dict[str, Any]:
    """Runs `job` unless another instance holds its lock (then raises JobBusy)."""
    async with lock.hold(job.name) as locked:
        if not locked:
            JOB_RUNS.labels(job.name, "busy").inc()
            raise JobBusy(job.name)
        started = time.perf_counter()
        try:
            summary = await job.run(engine, as_of)
        except Exception:
            JOB_RUNS.labels(job.name, "failed").inc()
            raise
        finally:
            JOB_SECONDS.labels(job.name).observe(time.perf_counter() - started)
        JOB_RUNS.labels(job.name, "done").inc()
        JOB_LAST_SUCCESS.labels(job.name).set_to_current_time()
        return {"job": job.name, **summary}


@dataclass
class JobScheduler:
    """A worker that runs every job of the service each `interval` seconds, in order. Every
    instance runs one; the job's lock lets one instance at a time do the work, and a job
    that fails is logged and tried again at the next round without stopping the others."""

    engine: AsyncEngine
    jobs: Sequence[Job]
    clock: Clock
    interval: float
    lock: JobLock | None = None
    name: str = "jobs"

    def __post_init__(self) -> None:
        self._stopping = asyncio.Event()
        self._lock: JobLock = self.lock or AdvisoryJobLock(self.engine)

    async def run_round(self) -> list[dict[str, Any]]:
        """Each job once, as of now; returns the summaries of the jobs this instance ran."""
        summaries = []
        for job in self.jobs:
            if self._stopping.is_set():
                break
            try:
                summary = await run_exclusively(job, self.engine, self.clock.now(), self._lock)
            except JobBusy:
                log.info("job %s is running elsewhere; skipped", job.name)
                continue
            except Exception as error:
                log.warning("job %s failed (%s)", job.name, type(error).__name__)
                continue
            log.info("job %s done", job.name)
            summaries.append(summary)
        return summaries

    async def run(self) -> None:
        while not self._stopping.is_set():
            await self.run_round()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval)

    async def stop(self) -> None:
        self._stopping.set()


_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 timestamp (with its offset) as an aware datetime; ValueError otherwise."""
    if not _RFC3339.fullmatch(text):
        raise ValueError("not an RFC 3339 timestamp with an offset")
    # fromisoformat takes at most microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    return datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
