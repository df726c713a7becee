"""The CLI is a client: it talks to the services over HTTP and to Kafka, and runs their
migrations by path; it imports no service's package, so it can ship apart from them."""

import ast
from pathlib import Path

from typer.testing import CliRunner

from fedelta_cli.main import app

CLI = Path(__file__).resolve().parents[3] / "fedelta_cli"


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_cli_imports_no_service() -> None:
    offending = [
        f"{path.name} imports {module}"
        for path in CLI.rglob("*.py")
        for module in imported_modules(path)
        if module == "services" or module.startswith("services.")
    ]
    assert offending == []


def test_every_command_group_is_there() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for command in (
        "simulate",
        "demo",
        "customer",
        "partners",
        "rewards",
        "coupon",
        "import",
        "topics",
        "migrate",
        "dlq",
        "jobs",
    ):
        assert command in result.output


def test_without_a_stack_a_command_says_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["customer", "show", "c-1"], env={"FEDELTA_DEV_ENV": str(tmp_path / "absent.env")}
    )
    assert result.exit_code != 0
    assert "make up" in str(result.exception) + result.output


def test_bench_and_chaos_use_the_client_package_never_the_cli() -> None:
    repo = CLI.parent
    offending = [
        f"{path.relative_to(repo)} imports {module}"
        for folder in ("bench", "chaos")
        for path in (repo / folder).rglob("*.py")
        for module in imported_modules(path)
        if module == "fedelta_cli" or module.startswith("fedelta_cli.")
    ]
    assert offending == []


def test_the_client_package_needs_nothing_of_the_platform() -> None:
    """A partner installs it for httpx and the standard library alone."""
    client = CLI.parent / "fedelta_client"
    platform = ("fedelta_cli", "shared", "services", "deploy", "bench", "chaos", "tests")
    offending = [
        f"{path.name} imports {module}"
        for path in client.rglob("*.py")
        for module in imported_modules(path)
        if module.split(".")[0] in platform
    ]
    assert offending == []
