"""The published AsyncAPI document, checked by the official AsyncAPI parser (@asyncapi/parser,
the library the AsyncAPI CLI validates with; installed by `make test-tools` from
deploy/contracts/package-lock.json), not by our own code."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from shared.messaging import schema

REPO = Path(__file__).resolve().parents[2]
NODE_TOOLS = REPO / "deploy" / "local" / "node-tools.sh"


def asyncapi_validate(document: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(NODE_TOOLS), "validate", str(document)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_published_document_passes_the_asyncapi_parser() -> None:
    result = asyncapi_validate(schema.OUTPUT / "asyncapi.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is valid" in result.stdout


def test_the_parser_refuses_a_payload_whose_definitions_are_not_where_its_refs_point(
    tmp_path: Path,
) -> None:
    # The shape the contract had before: a payload's $defs nested under properties.data while
    # its refs point at the root. The parser must say so, or the test above proves nothing.
    for path in schema.OUTPUT.iterdir():
        shutil.copy(path, tmp_path / path.name)
    broken = tmp_path / "fedelta.customer.enrolled.v1.schema.json"
    document = schema.event_schema("fedelta.customer.enrolled.v1")
    document["properties"]["data"]["$defs"] = document.pop("$defs")
    broken.write_text(json.dumps(document))
    result = asyncapi_validate(tmp_path / "asyncapi.yaml")
    assert result.returncode != 0
    assert "#/$defs/Consent" in result.stdout + result.stderr
