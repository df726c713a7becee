"""deploy/k8s/, rendered by kustomize (base and the production overlay) and every object
validated against the Kubernetes JSON schemas; then what the schemas cannot say: probes,
resources, non-root pods, a PodDisruptionBudget per Deployment, every setting a service needs
given, and secrets only by reference.

The tools come from `make test-tools` (deploy/local/k8s-tools.sh install: kubectl, whose built-in
kustomize renders) and the dev extra (kubernetes-validate); a missing one fails this module, it is
never skipped."""

from __future__ import annotations

import base64
import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
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
KUBECTL = tool_path("kubectl")
KUSTOMIZATIONS = {"base": "deploy/k8s/base", "production": "deploy/k8s/overlays/production"}
# The oldest Kubernetes minor still commonly run, and the newest the schemas know.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
SERVICES = list(SETTINGS_CLASSES)
TOPIC_LAYOUT = {
    "base": {"FEDELTA_TOPIC_REPLICATION_FACTOR": "1", "FEDELTA_TOPIC_MIN_ISR": "1"},
    "production": {"FEDELTA_TOPIC_REPLICATION_FACTOR": "3", "FEDELTA_TOPIC_MIN_ISR": "2"},
}

Manifest = dict[str, Any]


def render(kustomization: str) -> list[Manifest]:
    assert KUBECTL.exists(), f"{KUBECTL} is missing: run deploy/local/k8s-tools.sh install"
    # `kubectl kustomize DIR` is kubectl's built-in `kustomize build DIR`.
    built = subprocess.run(
        [str(KUBECTL), "kustomize", str(REPO / kustomization)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


@pytest.fixture(scope="module", params=list(KUSTOMIZATIONS))
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[Manifest]]:
    name = str(request.param)
    return name, render(KUSTOMIZATIONS[name])


def of_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def containers(workload: Manifest) -> list[Manifest]:
    spec = workload["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def config_maps(manifests: list[Manifest]) -> dict[str, dict[str, str]]:
    return {name: m.get("data", {}) for name, m in of_kind(manifests, "ConfigMap").items()}


def container_env(container: Manifest, maps: dict[str, dict[str, str]]) -> dict[str, Manifest]:
    """Each variable the container gets, with where it comes from."""
    found: dict[str, Manifest] = {}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        assert ref is not None, f"{container['name']}: envFrom only from ConfigMaps"
        assert ref["name"] in maps, f"{container['name']}: envFrom unknown {ref['name']}"
        for key, value in maps[ref["name"]].items():
            found[key] = {"configMap": ref["name"], "value": value}
    for variable in container.get("env", []):
        found[variable["name"]] = variable
    return found


def service_containers(manifests: list[Manifest]) -> Iterator[tuple[str, str, Manifest]]:
    """(service, workload name, container) for every container that runs a service."""
    for kind in ("Deployment", "Job"):
        for name, workload in of_kind(manifests, kind).items():
            for container in containers(workload):
                command = " ".join(container.get("command", []) + container.get("args", []))
                for service in SERVICES:
                    if f"-m services.{service} " in f"{command} ":
                        yield service, name, container


def test_both_kustomizations_render_and_every_object_matches_the_kubernetes_schemas(
    rendered: tuple[str, list[Manifest]],
) -> None:
    name, manifests = rendered
    kinds = sorted({m["kind"] for m in manifests})
    assert {"Deployment", "Service", "PodDisruptionBudget", "ConfigMap", "Job"} <= set(kinds)
    for manifest in manifests:
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(manifest, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                where = "/".join(str(p) for p in error.path)
                pytest.fail(
                    f"{name}: {manifest['kind']}/{manifest['metadata']['name']} "
                    f"at {where}: {error.message} (Kubernetes {version})"
                )


def test_every_service_has_a_deployment_with_probes_resources_and_a_non_root_pod(
    rendered: tuple[str, list[Manifest]],
) -> None:
    name, manifests = rendered
    deployments = of_kind(manifests, "Deployment")
    assert set(deployments) == {f"fedelta-{service}" for service in SERVICES}
    for service in SERVICES:
        deployment = deployments[f"fedelta-{service}"]
        spec = deployment["spec"]
        assert spec["replicas"] >= (2 if name == "production" else 1), service
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items()
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod.get("automountServiceAccountToken") is False
        (container,) = pod["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": default_port(service)}, service
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", service
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", service
        resources = container["resources"]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[bound]), (service, bound)
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_every_deployment_has_a_disruption_budget_and_a_service_that_select_its_pods(
    rendered: tuple[str, list[Manifest]],
) -> None:
    _, manifests = rendered
    budgets = list(of_kind(manifests, "PodDisruptionBudget").values())
    services = list(of_kind(manifests, "Service").values())
    for name, deployment in of_kind(manifests, "Deployment").items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        matching = [
            b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(matching) == 1, f"{name} has {len(matching)} disruption budgets"
        budget = matching[0]["spec"]
        # A budget that allows no disruption would block every node drain.
        assert budget.get("maxUnavailable", 0) >= 1 or (
            budget.get("minAvailable", 0) < deployment["spec"]["replicas"]
        ), name
        selecting = [s for s in services if s["spec"]["selector"].items() <= labels.items()]
        assert len(selecting) == 1, f"{name} has {len(selecting)} Services"


def test_every_service_container_gets_every_required_setting_and_only_its_own(
    rendered: tuple[str, list[Manifest]],
) -> None:
    name, manifests = rendered
    maps = config_maps(manifests)
    seen: set[tuple[str, str]] = set()
    for service, workload, container in service_containers(manifests):
        seen.add((service, workload))
        env = container_env(container, maps)
        missing = required_env(service) - set(env)
        assert not missing, f"{name}: {workload}/{container['name']} lacks {sorted(missing)}"
        prefix = f"FEDELTA_{service.upper()}_"
        unknown = {key for key in env if key.startswith(prefix)} - env_names(service)
        assert not unknown, f"{name}: {workload}: {sorted(unknown)} are no settings (typo?)"
        foreign = {k for k in env if k.startswith("FEDELTA_") and not k.startswith(prefix)}
        assert not foreign, f"{name}: {workload} gets others' settings: {sorted(foreign)}"
        for variable in env.values():
            for ref in ("configMapKeyRef", "secretKeyRef"):
                if ref in variable.get("valueFrom", {}):
                    assert variable["valueFrom"][ref].get("name"), (workload, variable)
        if workload.startswith("fedelta-") and workload == f"fedelta-{service}":
            assert env[f"{prefix}HOST"].get("value") == "0.0.0.0"  # noqa: S104 (in its pod)
    expected = {(service, f"fedelta-{service}") for service in SERVICES}
    expected |= {(service, "fedelta-migrate") for service in SERVICES}
    assert expected <= seen, sorted(expected - seen)


def test_secrets_are_references_never_values_in_git(
    rendered: tuple[str, list[Manifest]],
) -> None:
    name, manifests = rendered
    assert not of_kind(manifests, "Secret"), f"{name}: a Secret's values would be in git"
    secret_settings = {s.env for service in SERVICES for s in settings_of(service) if s.secret}
    maps = config_maps(manifests)
    for config_map, data in maps.items():
        leaked = secret_settings & set(data)
        assert not leaked, f"{name}: ConfigMap {config_map} holds {sorted(leaked)}"
    checked = 0
    for _, workload, container in service_containers(manifests):
        for variable, source in container_env(container, maps).items():
            if variable in secret_settings:
                checked += 1
                assert "secretKeyRef" in source.get("valueFrom", {}), (workload, variable)
    # Three per Deployment (database URL, admin and read tokens' hashes, and more), two per
    # migrations container.
    assert checked >= 3 * len(SERVICES) + 2 * len(SERVICES)


def test_the_migrations_job_runs_every_service_once_and_never_in_parallel(
    rendered: tuple[str, list[Manifest]],
) -> None:
    _, manifests = rendered
    job = of_kind(manifests, "Job")["fedelta-migrate"]
    assert job["spec"].get("parallelism", 1) == 1 and job["spec"].get("completions", 1) == 1
    commands = [" ".join(c["args"]) for c in containers(job)]
    assert sorted(commands) == sorted(f"python -m services.{s} migrate" for s in SERVICES)
    assert job["spec"]["template"]["spec"]["restartPolicy"] in {"Never", "OnFailure"}


def test_the_topics_job_asks_for_the_replication_each_kustomization_needs(
    rendered: tuple[str, list[Manifest]],
) -> None:
    name, manifests = rendered
    job = of_kind(manifests, "Job")["fedelta-topics"]
    (container,) = containers(job)
    assert container["args"][:3] == ["python", "-m", "shared.messaging.topics"]
    env = container_env(container, config_maps(manifests))
    for variable, value in TOPIC_LAYOUT[name].items():
        assert env[variable]["value"] == value, (name, variable)


def test_production_runs_in_its_namespace_with_more_instances_than_base() -> None:
    base = of_kind(render(KUSTOMIZATIONS["base"]), "Deployment")
    production_manifests = render(KUSTOMIZATIONS["production"])
    production = of_kind(production_manifests, "Deployment")
    assert all(m["metadata"].get("namespace") == "fedelta" for m in production_manifests)
    assert sum(d["spec"]["replicas"] for d in production.values()) > sum(
        d["spec"]["replicas"] for d in base.values()
    )


def test_the_guides_first_apply_step_takes_the_jobs_and_what_they_need_but_no_service(
    rendered: tuple[str, list[Manifest]],
) -> None:
    # docs/operations.md applies `-l 'app.kubernetes.io/component notin (<services>)'` first,
    # waits for the Jobs, then applies everything: the services roll after the migrations.
    guide = (REPO / "docs/operations.md").read_text()
    selector = f"app.kubernetes.io/component notin ({','.join(SERVICES)})"
    assert f"-l '{selector}'" in guide
    name, manifests = rendered
    first = [
        m
        for m in manifests
        if m["metadata"].get("labels", {}).get("app.kubernetes.io/component") not in SERVICES
    ]
    kinds = {m["kind"] for m in first}
    assert "Deployment" not in kinds, name
    names = {(m["kind"], m["metadata"]["name"]) for m in first}
    for job in ("fedelta-migrate", "fedelta-topics"):
        assert ("Job", job) in names, (name, job)
        spec = of_kind(manifests, "Job")[job]["spec"]["template"]["spec"]
        assert ("ServiceAccount", spec["serviceAccountName"]) in names
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                assert ("ConfigMap", source["configMapRef"]["name"]) in names, (job, source)


# Stand-ins for what the operator's ConfigMap and Secrets hold, in the shape they must have.
PLATFORM = {
    "kafka-bootstrap-servers": "b-1.kafka.internal:9092,b-2.kafka.internal:9092",
    "smtp-host": "smtp.internal",
    "smtp-port": "587",
    "sms-url": "https://sms.example.com/send",
    "notifications-public-url": "https://loyalty.example.com/notifications",
    "web-public-url": "https://loyalty.example.com",
}


def secret_value(key: str, service: str) -> str:
    if key == "database-url":
        return f"postgresql+asyncpg://{service}:pw@pg.internal:5432/fedelta_{service}"
    if key.endswith(("-sha256", "-sha256-next")):  # a token's hash, one of its own per key
        return sha256_hex(f"{key}-of-{service}")
    if key.startswith("secrets-key"):  # a sealing key: base64 of 32 bytes
        return base64.b64encode(hashlib.sha256(f"{key}-of-{service}".encode()).digest()).decode()
    return f"{key}-of-{service}-long-enough"


def test_every_service_container_loads_its_settings_from_what_the_manifests_give(
    rendered: tuple[str, list[Manifest]], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, manifests = rendered
    maps = config_maps(manifests)
    for service, workload, container in service_containers(manifests):
        env: dict[str, str] = {}
        for variable, source in container_env(container, maps).items():
            if "value" in source:
                env[variable] = source["value"]
                continue
            value_from = source["valueFrom"]
            if "configMapKeyRef" in value_from:
                ref = value_from["configMapKeyRef"]
                assert ref["name"] == "fedelta-platform", (workload, variable)
                env[variable] = PLATFORM[ref["key"]]
            else:
                ref = value_from["secretKeyRef"]
                assert ref["name"] == f"fedelta-{service}", (workload, variable)
                env[variable] = secret_value(ref["key"], service)
        settings = load_with(service, env, monkeypatch)
        assert settings.model_dump()["port"] == default_port(service), (name, workload)
