"""The stack's service processes, from the pid files `deploy/local/stack.sh` writes beside the
dev.env (`<state>/run/<service>.pid`), for benchmarks that hold some of them back."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from fedelta_client.devenv import DEFAULT_DEV_ENV

CONSUMER_SERVICES = ("points", "tiers", "notifications", "engagement", "insights")


def run_dir() -> Path:
    return Path(os.environ.get("FEDELTA_DEV_ENV", DEFAULT_DEV_ENV)).parent / "run"


def service_pids(names: tuple[str, ...]) -> list[int] | None:
    """Each named service's process and its children (uvicorn's workers); None when a pid
    file is missing or its process is gone (a stack not started by stack.sh)."""
    pids: list[int] = []
    for name in names:
        try:
            pid = int((run_dir() / f"{name}.pid").read_text().strip())
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except (OSError, ValueError):
            return None
        pids += [pid, *map(int, children)]
    return pids


def cpu_seconds(pids: list[int]) -> float:
    """The CPU time (user and system) the processes have used so far, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


@contextmanager
def stopped(pids: list[int]) -> Iterator[None]:
    """The processes stopped (SIGSTOP) inside the block and continued (SIGCONT) after it,
    whatever happens inside: as if they ran on other machines, for a measure of the rest."""
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        yield
    finally:
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
