"""The supervisor restarts a failed worker with backoff, and forgets the backoff after a
healthy run, so one failure after hours of work is retried promptly."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from shared.runtime import process as runtime
from shared.runtime.process import supervise


class _AsyncioWithoutWaiting:
    """asyncio as the supervisor sees it, with `sleep` recorded instead of waited."""

    def __init__(self, sleep: Callable[[float], Awaitable[None]]) -> None:
        self.sleep = sleep

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


class FlakyWorker:
    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.runs = 0

    async def run(self) -> None:
        self.runs += 1
        if self.runs <= self.failures:
            raise ConnectionResetError("broker went away")

    async def stop(self) -> None:
        return None


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []

    async def no_wait(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(runtime, "asyncio", _AsyncioWithoutWaiting(no_wait))
    return recorded


async def test_quick_failures_back_off_exponentially_up_to_the_cap(waits: list[float]) -> None:
    worker = FlakyWorker(failures=5)
    await supervise(worker, first_backoff=1, max_backoff=4, healthy_after=3600)
    assert worker.runs == 6
    assert waits == [1, 2, 4, 4, 4]


async def test_a_failure_after_a_healthy_run_starts_the_backoff_afresh(
    waits: list[float],
) -> None:
    worker = FlakyWorker(failures=3)
    await supervise(worker, first_backoff=1, max_backoff=8, healthy_after=0)
    assert waits == [1, 1, 1]
