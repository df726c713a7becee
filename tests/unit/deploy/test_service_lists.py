"""Issues 20, 21 and 22: a service is first-class only if every place that lists the services
lists it (the local scripts, the Makefile's test ports, the clients, the test stack, compose's
credentials, Kubernetes, chaos and bench). The truth is `services/`: each directory with a
settings class is a service. A service added to `services/` and forgotten in one list fails
here, naming the list."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import bench.processes
import chaos.stack
import chaos.verify
import fedelta_cli.kafka_admin
import fedelta_client.devenv
import fedelta_client.internal
import tests.support.stack
from shared.messaging import acls, schema, topics
from tests.support.service_settings import SETTINGS_CLASSES, default_port

REPO = Path(__file__).resolve().parents[3]
SERVICES = sorted(p.name for p in (REPO / "services").iterdir() if (p / "settings.py").exists())
# The services with a Kafka consumer: all but ingest, the POS edge, and the web.
CONSUMERS = sorted(schema.CONSUMES)
# The services with an API for programs (fedelta_client): all but the web, which is for
# browsers, and which calls each of them with its console credential.
API_SERVICES = sorted(set(SERVICES) - {"web"})


def bash_array(path: str, name: str) -> list[str]:
    """The words of `NAME=(a b c)` in a script."""
    found = re.search(rf"^{name}=\(([^)]*)\)$", (REPO / path).read_text(), re.MULTILINE)
    assert found is not None, f"{path} no longer sets {name}=(...): update this test"
    return found.group(1).split()


def for_loop_words(path: str) -> list[str]:
    """The words of the script's `for service in a b c; do` loop."""
    found = re.search(r"^for service in ([a-z ]+); do$", (REPO / path).read_text(), re.MULTILINE)
    assert found is not None, f"{path} no longer loops over the services: update this test"
    return found.group(1).split()


def make_variable(name: str) -> str:
    """A Makefile variable's value, its continuation lines joined."""
    text = (REPO / "Makefile").read_text().replace("\\\n", " ")
    found = re.search(rf"^{name} := (.+)$", text, re.MULTILINE)
    assert found is not None, f"the Makefile no longer sets {name}"
    return found.group(1)


def test_the_ground_truth_has_engagement_insights_and_the_web() -> None:
    assert {"engagement", "insights", "web"} <= set(SERVICES)
    assert sorted(SETTINGS_CLASSES) == SERVICES


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("deploy/local/services.sh", "SERVICES"),
        ("deploy/local/stack.sh", "SERVICE_NAMES"),
        ("deploy/local/postgres.sh", "PG_SERVICES"),
    ],
)
def test_the_local_scripts_list_every_service(path: str, name: str) -> None:
    assert sorted(bash_array(path, name)) == SERVICES, f"{path}: {name}"


def test_every_service_is_a_kafka_principal_of_the_local_broker() -> None:
    principals = set(bash_array("deploy/local/lib.sh", "KAFKA_PRINCIPALS"))
    assert principals - {"admin", "controller"} == set(SERVICES)
    assert sorted(acls.SERVICES) == SERVICES


@pytest.mark.parametrize("service", SERVICES)
def test_the_local_scripts_default_each_service_to_its_settings_port(service: str) -> None:
    port = default_port(service)
    variable = f"FEDELTA_{service.upper()}_PORT"
    services_sh = (REPO / "deploy/local/services.sh").read_text()
    assert f"{service}) printf '%s\\n' \"${{{variable}:-{port}}}\" ;;" in services_sh
    assert f': "${{{variable}:={port}}}"' in (REPO / "deploy/local/stack.sh").read_text()
    dev_env = f"printf 'FEDELTA_{service.upper()}_URL=http://127.0.0.1:%s\\n' \"${variable}\""
    assert dev_env in (REPO / "deploy/local/stack.sh").read_text(), "dev.env lacks its URL"


def test_the_makefile_gives_the_test_stack_one_port_per_service_and_the_e2e_the_same() -> None:
    stack = dict(re.findall(r"FEDELTA_([A-Z]+)_PORT=(\d+)", make_variable("TEST_STACK")))
    test_env = re.search(r"FEDELTA_TEST_SERVICE_PORTS=([\d,]+)", make_variable("TEST_ENV"))
    assert test_env is not None
    ports = test_env.group(1).split(",")
    # The e2e pipeline reads the list in the order of tests/support/stack.py's SERVICES.
    in_order = [stack[service.upper()] for service in tests.support.stack.SERVICES]
    assert ports == in_order
    assert sorted(tests.support.stack.SERVICES) == SERVICES
    assert len(set(ports)) == len(SERVICES)


def test_the_e2e_pipeline_ports_default_to_the_makefiles_and_refuse_a_short_list() -> None:
    ports = tests.support.stack.service_ports({})
    assert set(ports) == {f"FEDELTA_{s.upper()}_PORT" for s in SERVICES}
    assert ports["FEDELTA_ENGAGEMENT_PORT"] == "18084"
    assert ports["FEDELTA_INSIGHTS_PORT"] == "18085"
    assert ports["FEDELTA_WEB_PORT"] == "18086"
    given = tests.support.stack.service_ports(
        {"FEDELTA_TEST_SERVICE_PORTS": "28080,28081,28082,28083,28084,28085,28086"}
    )
    assert given["FEDELTA_INGEST_PORT"] == "28080"
    assert given["FEDELTA_ENGAGEMENT_PORT"] == "28084"
    assert given["FEDELTA_INSIGHTS_PORT"] == "28085"
    assert given["FEDELTA_WEB_PORT"] == "28086"
    # A list written for the six services of before names the one it would leave out.
    with pytest.raises(ValueError, match="web"):
        tests.support.stack.service_ports({"FEDELTA_TEST_SERVICE_PORTS": "1,2,3,4,5,6"})
    with pytest.raises(ValueError, match="port numbers"):
        tests.support.stack.service_ports({"FEDELTA_TEST_SERVICE_PORTS": "1,2,3,4,5,6,x"})


def test_the_clients_and_the_test_stack_know_every_service() -> None:
    assert sorted(fedelta_client.devenv.SERVICES) == SERVICES
    assert sorted(fedelta_client.internal.SERVICES) == API_SERVICES
    assert sorted(tests.support.stack.SERVICES) == SERVICES


def test_compose_and_its_credentials_cover_every_service() -> None:
    assert sorted(for_loop_words("deploy/docker/postgres-init.sh")) == SERVICES
    script = (REPO / "deploy/docker/compose-env.sh").read_text()
    tokens = re.search(r"for service in \(([^)]*)\):\n    for role", script)
    principals = re.search(r"for principal in \(([^)]*)\):", script)
    assert tokens is not None and principals is not None
    assert sorted(re.findall(r'"([A-Z]+)"', tokens.group(1))) == [s.upper() for s in SERVICES]
    named = set(re.findall(r'"([A-Z]+)"', principals.group(1))) - {"CONTROLLER", "ADMIN"}
    assert named == {s.upper() for s in SERVICES}


def test_the_image_exposes_every_port_and_compose_makes_every_kafka_user() -> None:
    dockerfile = (REPO / "deploy/docker/Dockerfile").read_text()
    exposed = re.search(r"^EXPOSE ([\d ]+)$", dockerfile, re.MULTILINE)
    assert exposed is not None, "the Dockerfile no longer EXPOSEs the ports: update this test"
    assert sorted(map(int, exposed.group(1).split())) == sorted(map(default_port, SERVICES))
    # The kafka-users job's lines (`<principal> <password>`), one per service.
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    command = " ".join(compose["services"]["kafka-users"]["command"])
    for service in SERVICES:
        assert f"{service} %s\\n" in command, service
        assert f"$$FEDELTA_KAFKA_{service.upper()}_PASSWORD" in command, service


def test_kubernetes_has_a_manifest_and_a_config_per_service() -> None:
    kustomization = (REPO / "deploy/k8s/base/kustomization.yaml").read_text()
    for service in SERVICES:
        assert f"  - {service}.yaml\n" in kustomization, service
        assert f"envs: [config/{service}.env]" in kustomization, service
        assert (REPO / f"deploy/k8s/base/{service}.yaml").exists(), service
    production = (REPO / "deploy/k8s/overlays/production/kustomization.yaml").read_text()
    resources = (REPO / "deploy/k8s/overlays/production/resources.yaml").read_text()
    for service in SERVICES:
        assert f"  - name: fedelta-{service}\n    count:" in production, service
        assert f"metadata: {{ name: fedelta-{service} }}" in resources, service


def test_chaos_starts_and_kills_every_service_and_rebalances_every_consumer() -> None:
    assert sorted(chaos.stack.SERVICES) == SERVICES
    assert sorted(chaos.stack.CONSUMERS) == CONSUMERS
    targets = {
        t.name.split(":")[0]
        for t in chaos.stack.ChaosStack(REPO, chaos.stack.Ports()).targets()
        if t.is_service
    }
    assert sorted(targets) == SERVICES
    # Quiescence waits for every consumer group and every outbox.
    assert sorted(chaos.verify.CONSUMED) == CONSUMERS
    for service, consumed in chaos.verify.CONSUMED.items():
        partners = {topics.PARTNERS} if topics.checks_partners(consumed) else set()
        assert set(consumed) | partners == set(acls.GRANTS[service].reads), service
    # The web's outbox stays empty (it writes no topic): nothing to wait for there.
    assert sorted(chaos.verify.SERVICES_WITH_OUTBOX) == sorted(
        service for service in SERVICES if acls.GRANTS[service].writes
    )


def test_the_lag_and_the_benchmarks_cover_every_consumer() -> None:
    groups = fedelta_cli.kafka_admin.CONSUMER_GROUPS
    assert sorted(groups) == sorted(f"fedelta-{service}" for service in CONSUMERS)
    assert sorted(bench.processes.CONSUMER_SERVICES) == CONSUMERS


def test_the_web_holds_a_console_credential_for_every_other_service_wherever_it_runs() -> None:
    """Issue 22: the local stack, compose and Kubernetes give the web a token at each service
    (FEDELTA_WEB_<SERVICE>_TOKEN) and that service its SHA-256, and the web each one's URL."""
    assert sorted(bash_array("deploy/local/stack.sh", "CONSOLE_SERVICES")) == API_SERVICES
    assert sorted(tests.support.stack.CONSOLE_SERVICES) == API_SERVICES
    script = (REPO / "deploy/docker/compose-env.sh").read_text()
    consoles = re.search(r"for service in \(([^)]*)\):\n    name = f\"FEDELTA_WEB_", script)
    assert consoles is not None, "compose-env.sh no longer makes the console tokens"
    assert sorted(re.findall(r'"([A-Z]+)"', consoles.group(1))) == [s.upper() for s in API_SERVICES]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    web = (REPO / "deploy/k8s/base/web.yaml").read_text()
    web_config = (REPO / "deploy/k8s/base/config/web.env").read_text()
    for service in API_SERVICES:
        upper = service.upper()
        assert f"FEDELTA_{upper}_CONSOLE_TOKEN_SHA256" in compose[service]["environment"]
        assert f"FEDELTA_WEB_{upper}_TOKEN" in compose["web"]["environment"], service
        assert f"FEDELTA_WEB_{upper}_URL" in compose["web"]["environment"], service
        manifest = (REPO / f"deploy/k8s/base/{service}.yaml").read_text()
        assert "key: console-token-sha256," in manifest, service
        assert f"key: {service}-token }}" in web, service
        assert f"FEDELTA_WEB_{upper}_URL=http://fedelta-{service}:" in web_config, service


def test_make_up_names_the_wallet_and_the_console_and_never_prints_the_password() -> None:
    script = (REPO / "deploy/local/stack.sh").read_text()
    dev_env = re.search(r"^write_dev_env\(\) \{\n(.*?)^\}", script, re.MULTILINE | re.DOTALL)
    steps = re.search(r"^print_next_steps\(\) \{\n(.*?)^\}", script, re.MULTILINE | re.DOTALL)
    assert dev_env is not None and steps is not None, "stack.sh moved: update this test"
    for name in ("FEDELTA_WEB_URL", "FEDELTA_CONSOLE_USER", "FEDELTA_CONSOLE_PASSWORD"):
        assert f"printf '{name}=" in dev_env.group(1), name
    assert "/wallet/sign-in" in steps.group(1) and "/console" in steps.group(1)
    assert "FIRST_STAFF_PASSWORD" not in steps.group(1)
