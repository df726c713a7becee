"""Services share nothing but `shared/`: no service imports another service's package."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVICES = sorted(p.name for p in (REPO / "services").iterdir() if (p / "__init__.py").exists())


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_other_service(service: str) -> None:
    others = [s for s in SERVICES if s != service]
    offending = [
        f"{path.relative_to(REPO)} imports {module}"
        for path in (REPO / "services" / service).rglob("*.py")
        for module in imported_modules(path)
        if any(module == f"services.{o}" or module.startswith(f"services.{o}.") for o in others)
    ]
    assert offending == []


@pytest.mark.parametrize("service", SERVICES)
def test_the_domain_imports_no_framework(service: str) -> None:
    frameworks = ("fastapi", "sqlalchemy", "aiokafka", "pydantic", "asyncpg", "starlette")
    domain = REPO / "services" / service / "domain"
    offending = [
        f"{path.relative_to(REPO)} imports {module}"
        for path in domain.rglob("*.py")
        for module in imported_modules(path)
        if module.split(".")[0] in frameworks
    ]
    assert offending == []


def test_shared_imports_no_service() -> None:
    offending = [
        f"{path.relative_to(REPO)} imports {module}"
        for path in (REPO / "shared").rglob("*.py")
        for module in imported_modules(path)
        if module.startswith("services")
    ]
    assert offending == []
