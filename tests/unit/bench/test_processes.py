"""The benchmark's hold on the consumer services: found from a stack's pid files, always
continued."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.processes import service_pids, stopped


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _wait_for_state(pid: int, wanted: set[str], within_s: float = 5.0) -> str:
    deadline = time.monotonic() + within_s
    state = _state(pid)
    while state not in wanted and time.monotonic() < deadline:
        time.sleep(0.01)
        state = _state(pid)
    return state


@pytest.fixture
def sleeper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "points.pid").write_text(f"{process.pid}\n")
    monkeypatch.setenv("FEDELTA_DEV_ENV", str(tmp_path / "dev.env"))
    yield process
    process.kill()
    process.wait()


def test_a_service_is_found_from_its_pid_file(sleeper: subprocess.Popen[bytes]) -> None:
    assert service_pids(("points",)) == [sleeper.pid]


def test_a_missing_pid_file_means_the_stack_is_not_known(
    sleeper: subprocess.Popen[bytes],
) -> None:
    assert service_pids(("points", "tiers")) is None


def test_held_processes_are_continued_even_when_the_block_fails(
    sleeper: subprocess.Popen[bytes],
) -> None:
    with pytest.raises(RuntimeError), stopped([sleeper.pid]):
        assert _wait_for_state(sleeper.pid, {"T"}) == "T"
        raise RuntimeError("the load failed")
    assert _wait_for_state(sleeper.pid, {"S", "R"}) in {"S", "R"}
