"""The whole pipeline as `make up` runs it, on the test stack's ports: five service processes,
the demo partner, real Kafka, PostgreSQL and SMTP."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from fedelta_client import DevEnv, StackClient
from tests.support.browser import (  # noqa: F401 (the web's browser fixtures, registered here)
    browser,
    new_page,
    page,
    page_options,
    pytest_runtest_makereport,
)
from tests.support.stack import Stack, service_ports


@dataclass(frozen=True)
class Pipeline:
    stack: Stack
    env: DevEnv
    script_env: dict[str, str]

    def run(self, script: str, *args: str) -> None:
        """One of deploy/local's scripts, with the pipeline's service ports."""
        self.stack.run(script, *args, env=self.script_env)


@pytest.fixture(scope="session")
def pipeline(stack: Stack) -> Iterator[Pipeline]:
    script_env = stack.script_env() | service_ports(os.environ)
    # No quiet hours: the pipeline's mails must go out whatever the time of day the suite runs.
    script_env |= {
        "FEDELTA_NOTIFICATIONS_QUIET_HOURS_START": "00:00",
        "FEDELTA_NOTIFICATIONS_QUIET_HOURS_END": "00:00",
    }
    stack.run("stack.sh", "up", env=script_env)
    try:
        yield Pipeline(stack, DevEnv.load(stack.state_dir / "dev.env"), script_env)
    finally:
        stack.run("services.sh", "stop", env=script_env)


@pytest.fixture
async def pos(pipeline: Pipeline) -> AsyncIterator[StackClient]:
    async with httpx.AsyncClient(timeout=20) as http:
        yield StackClient(pipeline.env, http)
