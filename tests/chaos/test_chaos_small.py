"""A small chaos run as part of `make test`: a few hundred calls while every service instance,
the Kafka broker and PostgreSQL are SIGKILLed once (and each consumer group rebalanced once),
then nothing lost, nothing doubled. `make chaos` is the same runner with 10,000 calls.

The run starts a stack of its own (state .fedelta/chaos-test and the ports below, none shared
with the test stack, `make up` or `make chaos`) and stops it whatever the outcome."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from chaos.stack import SERVICES
from tests.support.stack import REPO

pytestmark = pytest.mark.e2e

ENV = os.environ
PORTS = {
    "--pg-port": ENV.get("FEDELTA_TEST_CHAOS_PG_PORT", "15482"),
    "--kafka-port": ENV.get("FEDELTA_TEST_CHAOS_KAFKA_PORT", "19232"),  # and the next one
    "--smtp-port": ENV.get("FEDELTA_TEST_CHAOS_SMTP_PORT", "10056"),
    "--service-port-base": ENV.get("FEDELTA_TEST_CHAOS_SERVICE_PORT_BASE", "18110"),  # 19 ports
}
STATE_DIR = ENV.get("FEDELTA_TEST_CHAOS_STATE_DIR", str(REPO / ".fedelta" / "chaos-test"))
# Generous: a loaded 2-core machine restarts a JVM broker and ten service processes slowly.
RUN_TIMEOUT_S = 1800


def test_a_small_chaos_run_loses_and_doubles_nothing() -> None:
    command = [
        sys.executable,
        "-m",
        "chaos",
        "--seed",
        "11",
        "--calls",
        "300",
        # Spread over about two and a half minutes, so that the kills land in the traffic.
        "--rate",
        "2",
        "--min-gap",
        "2",
        "--max-gap",
        "6",
        "--concurrency",
        "6",
        "--duration",
        "900",
        "--quiescence-timeout",
        "600",
        "--state-dir",
        STATE_DIR,
        *(part for option, port in PORTS.items() for part in (option, port)),
    ]
    result = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "lost: 0, duplicated: 0, differences: 0" in output, output[-6000:]
    killed = re.findall(r"^  (\S+)\s+(\d+)$", output, flags=re.MULTILINE)
    targets = {name for name, count in killed if int(count) >= 1 and not name.startswith("fed")}
    assert {"kafka", "postgres"} <= targets, output[-6000:]
    assert sum(1 for name in targets if ":" in name) == 2 * len(SERVICES), output[-6000:]
