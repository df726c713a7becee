"""Where `make test-tools` put a checker: `deploy/local/k8s-tools.sh path NAME`."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def tool_path(name: str) -> Path:
    answer = subprocess.run(
        [str(REPO / "deploy" / "local" / "k8s-tools.sh"), "path", name],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(answer.stdout.strip())
