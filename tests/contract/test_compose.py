"""docker-compose.yml, checked without a Docker engine (CI has none): it loads with the loader
`docker compose` uses (compose-go, built by deploy/local/k8s-tools.sh install), images are
pinned, every setting a service needs is set, credentials only by reference, health checks,
ordered start-up, and the ports the README documents."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.service_settings import (
    SETTINGS_CLASSES,
    default_port,
    env_names,
    load_with,
    required_env,
    settings_of,
)
from tests.support.stack import sha256_hex
from tests.support.tools import tool_path

REPO = Path(__file__).resolve().parents[2]
COMPOSE_CHECK = tool_path("compose-check")
SERVICES = list(SETTINGS_CLASSES)
JOBS = ("kafka-users", "topics", "migrate")
# ${NAME:?message}: compose refuses to start while NAME is unset or empty.
REQUIRED_VARIABLE = re.compile(r"\$\{[A-Z][A-Z0-9_]*:\?[^}]*\}")
ANY_VARIABLE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment must be a mapping (KEY: value), not a list"
    return {str(key): str(value) for key, value in env.items()}


def compose_check(*env_files: Path) -> subprocess.CompletedProcess[str]:
    assert COMPOSE_CHECK.exists(), (
        f"{COMPOSE_CHECK} is missing: run deploy/local/k8s-tools.sh install"
    )
    return subprocess.run(
        [str(COMPOSE_CHECK), str(REPO / "docker-compose.yml"), *map(str, env_files)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.fixture(scope="module")
def env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Credentials as deploy/docker/compose-env.sh makes them."""
    path = tmp_path_factory.mktemp("compose") / "compose.env"
    subprocess.run([str(REPO / "deploy/docker/compose-env.sh"), str(path)], check=True, timeout=60)
    return path


@pytest.fixture(scope="module")
def loaded(env_file: Path) -> subprocess.CompletedProcess[str]:
    return compose_check(env_file)


def test_the_file_loads_with_the_compose_loader_given_the_credentials_script_makes(
    env_file: Path, loaded: subprocess.CompletedProcess[str]
) -> None:
    assert env_file.stat().st_mode & 0o077 == 0, "the credentials file is readable by others"
    assert loaded.returncode == 0, loaded.stderr
    project = yaml.safe_load(loaded.stdout)
    assert set(project["services"]) >= {"kafka", "postgres", *JOBS, *SERVICES}
    for name, service in project["services"].items():
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", (name, port)
    # Interpolated: no variable is left, and the credentials are the file's.
    assert "${" not in loaded.stdout
    made = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    token = made["FEDELTA_POINTS_ADMIN_TOKEN"]
    points = project["services"]["points"]["environment"]
    assert points["FEDELTA_POINTS_ADMIN_TOKEN_SHA256"] == sha256_hex(token)
    # A service is given the hashes of its own tokens, never a token nor another's hash.
    assert token not in loaded.stdout
    assert made["FEDELTA_TIERS_ADMIN_TOKEN_SHA256"] not in points.values()


def test_every_service_and_the_migrations_job_load_their_settings_from_the_compose_file(
    loaded: subprocess.CompletedProcess[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert loaded.returncode == 0, loaded.stderr
    project = yaml.safe_load(loaded.stdout)["services"]
    for service in SERVICES:
        for container in (service, "migrate"):
            env = {str(k): str(v) for k, v in project[container]["environment"].items()}
            own = {k: v for k, v in env.items() if k.startswith(f"FEDELTA_{service.upper()}_")}
            settings = load_with(service, own, monkeypatch).model_dump()
            assert settings["port"] == default_port(service), (container, service)
            assert settings["kafka_bootstrap_servers"] == "kafka:9092"


def test_the_file_refuses_to_load_without_the_credentials(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    loaded = compose_check(empty)
    assert loaded.returncode != 0
    assert "required variable" in loaded.stderr and "compose-env.sh" in loaded.stderr


def test_the_whole_stack_is_there(services: dict[str, dict[str, Any]]) -> None:
    expected = {"kafka", "postgres", "mailpit", *JOBS, *SERVICES, "prometheus", "grafana"}
    assert expected <= set(services)


def test_every_image_is_pinned_to_a_version(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service.get("image")
        assert isinstance(image, str), f"{name} has no image"
        if "build" in service:
            # Our own image, built from deploy/docker/Dockerfile whose base is pinned.
            assert image.startswith("fedelta:"), name
            continue
        reference, _, digest = image.partition("@")
        repository, _, tag = reference.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest" and re.search(r"\d", tag), f"{name}: {image} is not a version"
        assert not digest or digest.startswith("sha256:"), name


def test_the_dockerfile_is_multi_stage_pinned_and_runs_as_a_numeric_non_root_user() -> None:
    dockerfile = (REPO / "deploy/docker/Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.MULTILINE)
    assert base is not None
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base.group(1))
    assert len(re.findall(r"^FROM ", dockerfile, re.MULTILINE)) >= 2
    users = re.findall(r"^USER (\S+)$", dockerfile, re.MULTILINE)
    assert users, "the image must not run as root"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0


def test_the_image_never_takes_local_state_or_secrets() -> None:
    ignore = (REPO / "deploy/docker/Dockerfile.dockerignore").read_text().splitlines()
    # Everything is excluded first and only the sources are let back in.
    assert ignore[[line.strip() for line in ignore].index("**")] == "**"
    let_in = [line for line in ignore if line.startswith("!")]
    assert not any(".fedelta" in line or ".env" in line or ".venv" in line for line in let_in)


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_gets_every_required_setting_and_only_settings_it_has(
    services: dict[str, dict[str, Any]], service: str
) -> None:
    env = environment(services[service])
    missing = required_env(service) - set(env)
    assert not missing, f"{service} would refuse to start: {sorted(missing)} unset"
    prefix = f"FEDELTA_{service.upper()}_"
    unknown = {key for key in env if key.startswith(prefix)} - env_names(service)
    assert not unknown, f"{service}: {sorted(unknown)} are no settings of {service} (typo?)"
    foreign = {key for key in env if key.startswith("FEDELTA_") and not key.startswith(prefix)}
    assert not foreign, f"{service} gets another service's settings: {sorted(foreign)}"


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_listens_on_its_published_port_on_every_interface_of_its_container(
    services: dict[str, dict[str, Any]], service: str
) -> None:
    env = environment(services[service])
    port = default_port(service)
    assert env[f"FEDELTA_{service.upper()}_HOST"] == "0.0.0.0"  # noqa: S104 (in its container)
    assert int(env.get(f"FEDELTA_{service.upper()}_PORT", port)) == port
    assert services[service]["ports"] == [f"127.0.0.1:{port}:{port}"]


def test_the_migrations_job_can_load_every_services_settings(
    services: dict[str, dict[str, Any]],
) -> None:
    env = environment(services["migrate"])
    for service in SERVICES:
        missing = required_env(service) - set(env)
        assert not missing, f"migrate cannot load {service}'s settings: {sorted(missing)}"
    assert {"FEDELTA_PARTNER_KEY", "FEDELTA_PARTNER_SECRET"} <= set(env)
    command = " ".join(services["migrate"]["command"])
    for service in SERVICES:
        assert f"python -m services.{service} migrate" in command


def test_credentials_are_required_variables_never_values(
    services: dict[str, dict[str, Any]],
) -> None:
    secrets = {s.env for service in SERVICES for s in settings_of(service) if s.secret}
    secrets |= {"FEDELTA_PARTNER_KEY", "FEDELTA_PARTNER_SECRET", "POSTGRES_PASSWORD"}
    secrets |= {f"FEDELTA_{service.upper()}_DB_PASSWORD" for service in SERVICES}
    secrets.add("GF_SECURITY_ADMIN_PASSWORD")
    checked = 0
    for name, service in services.items():
        for key, value in environment(service).items():
            if key not in secrets:
                continue
            checked += 1
            if key.endswith("_DATABASE_URL"):
                password = re.fullmatch(r"postgresql\+asyncpg://[^:]+:(.+)@[^@]+", value)
                assert password is not None, f"{name}: {key} has no password"
                value = password.group(1)
            assert REQUIRED_VARIABLE.fullmatch(value), f"{name}: {key} is not a ${{VAR:?}}"
    assert checked >= 20


def test_the_env_file_script_makes_every_variable_the_compose_file_requires(
    env_file: Path,
) -> None:
    lines = (REPO / "docker-compose.yml").read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    required = {match.group(0).split(":")[0][2:] for match in REQUIRED_VARIABLE.finditer(text)}
    script = (REPO / "deploy/docker/compose-env.sh").read_text()
    made = set(re.findall(r"printf '([A-Z][A-Z0-9_]*)=", script))
    for template in re.findall(r"printf '(FEDELTA_%s_[A-Z_]+)=", script):
        made |= {template.replace("%s", service.upper()) for service in SERVICES}
    # The services' own tokens and their hashes are made by a loop: as the file has them.
    made |= {line.split("=", 1)[0] for line in env_file.read_text().splitlines() if "=" in line}
    assert required, "no required variable found: the pattern no longer matches"
    assert required <= made, sorted(required - made)
    optional = set(ANY_VARIABLE.findall(text)) - required
    assert optional <= {"FEDELTA_IMAGE_TAG"}, sorted(optional)


def test_every_long_running_container_has_a_health_check(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if name in JOBS:
            assert service.get("restart") == "no", f"the one-shot {name} must not restart"
            continue
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name} has no health check"
        assert service.get("restart") == "unless-stopped", name
    probes = {
        "kafka": "kafka-broker-api-versions.sh",
        "postgres": "pg_isready",
        **{service: f":{default_port(service)}/readyz" for service in SERVICES},
    }
    for name, expected in probes.items():
        assert expected in " ".join(services[name]["healthcheck"]["test"]), name


def test_start_up_waits_for_what_each_part_needs(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dependency, how in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert "condition" in how, f"{name} → {dependency} has no condition"
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in SERVICES:
        depends = services[name]["depends_on"]
        for job in JOBS:
            assert depends[job]["condition"] == "service_completed_successfully", name


def test_only_the_loopback_interface_is_published(services: dict[str, dict[str, Any]]) -> None:
    published = [(name, port) for name, s in services.items() for port in s.get("ports", [])]
    assert published
    for name, port in published:
        assert isinstance(port, str) and port.startswith("127.0.0.1:"), (name, port)
    assert "ports" not in services["kafka"] and "ports" not in services["postgres"]


def test_the_readme_documents_the_published_service_ports() -> None:
    readme = (REPO / "README.md").read_text()
    line = re.search(r"Services listen on 127\.0\.0\.1: (.+?), each", readme)
    assert line is not None, "README's line of service ports moved: update this test"
    documented = {name: int(port) for name, port in re.findall(r"(\w+) (\d+)", line.group(1))}
    assert documented == {service: default_port(service) for service in SERVICES}


def test_kafka_and_postgres_keep_their_data_in_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    volumes = set(compose["volumes"])
    for name, path in (("kafka", "/var/lib/kafka/data"), ("postgres", "/var/lib/postgresql/data")):
        mounts = {m.split(":")[1]: m.split(":")[0] for m in services[name]["volumes"]}
        assert mounts.get(path) in volumes, f"{name} keeps {path} in no named volume"
    assert services["kafka"]["environment"]["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]


def test_observability_is_a_profile_and_mounts_files_that_exist(
    services: dict[str, dict[str, Any]],
) -> None:
    for name in ("prometheus", "grafana"):
        assert services[name].get("profiles") == ["observability"], name
    for name, service in services.items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name} mounts {source}, which is missing"


def test_the_services_read_only_what_the_settings_classes_define() -> None:
    # A guard for this test module itself: every service has a settings class to check against.
    assert sorted(SERVICES) == sorted(
        p.name for p in (REPO / "services").iterdir() if (p / "settings.py").exists()
    )
