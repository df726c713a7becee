"""Compose and Kubernetes give every service an internal port, publish or expose it nowhere,
and Prometheus scrapes it there (issue 19); the local stack keeps everything on one port."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.service_settings import SETTINGS_CLASSES, default_port

REPO = Path(__file__).resolve().parents[3]
SERVICES = list(SETTINGS_CLASSES)


def internal_port(service: str) -> int:
    return default_port(service) + 1000


def env_file(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def scrape_targets(path: Path) -> dict[str, list[str]]:
    config = yaml.safe_load(path.read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    return {c["labels"]["service"]: c["targets"] for c in job["static_configs"]}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services: dict[str, Any] = loaded["services"]
    return services


@pytest.mark.parametrize("service", SERVICES)
def test_compose_serves_the_internal_paths_on_a_port_it_does_not_publish(
    compose: dict[str, Any], service: str
) -> None:
    env = compose[service]["environment"]
    assert env[f"FEDELTA_{service.upper()}_INTERNAL_PORT"] == str(internal_port(service))
    published = " ".join(compose[service].get("ports", []))
    assert str(internal_port(service)) not in published
    targets = scrape_targets(REPO / "deploy/docker/prometheus.yml")
    assert targets[service] == [f"{service}:{internal_port(service)}"]


@pytest.mark.parametrize("service", SERVICES)
def test_kubernetes_scrapes_the_internal_port_and_no_service_exposes_it(service: str) -> None:
    config = env_file(REPO / f"deploy/k8s/base/config/{service}.env")
    assert config[f"FEDELTA_{service.upper()}_INTERNAL_PORT"] == str(internal_port(service))
    deployment, exposed, *_ = yaml.safe_load_all(
        (REPO / f"deploy/k8s/base/{service}.yaml").read_text()
    )
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(internal_port(service))
    assert exposed["kind"] == "Service"
    assert [p["port"] for p in exposed["spec"]["ports"]] == [default_port(service)]
    # The kubelet's probes stay on the public port: the probes answer on both.
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["port"] == "http"


def test_the_local_stack_keeps_everything_on_each_services_port() -> None:
    for script in ("deploy/local/stack.sh", "deploy/local/services.sh"):
        assert "INTERNAL_PORT" not in (REPO / script).read_text(), script
    targets = scrape_targets(REPO / "deploy/observability/prometheus.yml")
    assert targets == {s: [f"127.0.0.1:{default_port(s)}"] for s in SERVICES}
