"""Fakes of the jobs mechanism's ports (shared/runtime/jobs.py): a job that records its runs,
and a lock that other instances may hold."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from shared.runtime.jobs import Job, JobLock


class RecordingJob:
    """Appends (name, as_of) to `runs` at each run; raises after it if `fails`."""

    def __init__(
        self, name: str, runs: list[tuple[str, datetime]] | None = None, *, fails: bool = False
    ) -> None:
        self.name = name
        self._runs = [] if runs is None else runs
        self._fails = fails
        self.ran = asyncio.Event()

    async def run(self, engine: AsyncEngine, as_of: datetime) -> dict[str, Any]:
        self._runs.append((self.name, as_of))
        self.ran.set()
        if self._fails:
            raise RuntimeError("the job broke")
        return {"deleted": 7}


class FakeLock:
    """Held elsewhere for the job names in `busy`."""

    def __init__(self, busy: set[str] | None = None) -> None:
        self.busy = busy or set()
        self.held: list[str] = []

    @contextlib.asynccontextmanager
    async def hold(self, job_name: str) -> AsyncIterator[bool]:
        if job_name in self.busy:
            yield False
            return
        self.held.append(job_name)
        try:
            yield True
        finally:
            self.held.remove(job_name)


def _implements_the_ports(job: RecordingJob, lock: FakeLock) -> tuple[Job, JobLock]:
    """Never called: mypy checks here that each fake implements its port."""
    return job, lock
