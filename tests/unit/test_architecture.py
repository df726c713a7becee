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


# shared/'s packages, lowest first: a module imports only from its own layer or a lower one.
SHARED_LAYERS = ["", "observability", "storage", "messaging", "runtime", "web"]


def shared_module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def shared_imports(path: Path, modules: set[str]) -> set[str]:
    """The shared modules `path` imports: `from shared.x import y` names module shared.x.y
    when there is one, else shared.x."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                if candidate in modules:
                    found.add(candidate)
                elif node.module in modules:
                    found.add(node.module)
    return found


def shared_graph() -> dict[str, set[str]]:
    paths = {shared_module_name(p): p for p in (REPO / "shared").rglob("*.py")}
    modules = set(paths)
    return {name: shared_imports(path, modules) - {name} for name, path in paths.items()}


def layer_of(module: str) -> int:
    parts = module.split(".")
    package = parts[1] if len(parts) > 2 else ""
    return SHARED_LAYERS.index(package)


def test_shared_has_no_import_cycle() -> None:
    graph = shared_graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph[module]):
            if state.get(imported) == 1:
                cycles.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                visit(imported)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert cycles == []


def test_shared_packages_import_only_their_own_layer_or_lower() -> None:
    offending = [
        f"{module} imports {imported}"
        for module, imports in shared_graph().items()
        for imported in imports
        if layer_of(imported) > layer_of(module)
    ]
    assert offending == []


def test_every_shared_package_is_in_a_layer() -> None:
    packages = {p.name for p in (REPO / "shared").iterdir() if (p / "__init__.py").exists()}
    assert packages == set(SHARED_LAYERS) - {""}


def functions_of(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text())
    return [
        (node.name, node.end_lineno - node.lineno + 1)  # type: ignore[operator]
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


MAX_FUNCTION_LINES = 79


def test_no_function_of_shared_or_the_services_is_80_lines_or_longer() -> None:
    offending = [
        f"{path.relative_to(REPO)}: {name} ({lines} lines)"
        for top in ("shared", "services", "fedelta_client", "fedelta_cli")
        for path in (REPO / top).rglob("*.py")
        if "migrations" not in path.parts
        for name, lines in functions_of(path)
        if lines > MAX_FUNCTION_LINES
    ]
    assert offending == []


@pytest.mark.parametrize("service", SERVICES)
def test_a_router_parses_calls_a_use_case_and_renders(service: str) -> None:
    """Routers reach storage only through use cases: none imports the service's adapters."""
    routers = REPO / "services" / service / "api" / "routers"
    offending = [
        f"{path.relative_to(REPO)} imports {module}"
        for path in routers.rglob("*.py")
        for module in imported_modules(path)
        if module.startswith(f"services.{service}.adapters")
    ]
    assert offending == []


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_skeleton(service: str) -> None:
    root = REPO / "services" / service
    expected = [
        "__main__.py",
        "settings.py",
        "bootstrap.py",
        "ports.py",
        "domain/__init__.py",
        "usecases/__init__.py",
        "adapters/tables.py",
        "adapters/repositories/__init__.py",
        "api/app.py",
        "api/deps.py",
        "api/schemas.py",
        "api/routers/__init__.py",
        "migrations/env.py",
    ]
    if service not in ("ingest", "web"):  # the POS edge and the web consume no events
        expected.append("handlers.py")
    missing = [name for name in expected if not (root / name).exists()]
    assert missing == []
