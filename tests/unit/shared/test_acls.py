"""The broker's ACL table (shared.messaging.acls) against what each service really produces and
consumes, the provenance rule built on it, and the one place clients take their connection
options from."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.ingest.usecases.customers import erasure_tombstones
from shared.messaging import acls, events, provenance, schema, topics
from shared.messaging.connection import KafkaConnection, KafkaCredentialsMissing
from shared.messaging.events import source_uri
from shared.messaging.topics import dead_letter_topic
from tests.support import factories

SERVICES = acls.SERVICES


def consumed_topics(service: str) -> tuple[str, ...]:
    """What the service's EventConsumer subscribes to (its bootstrap's CONSUMES); ingest and
    the web have no consumer."""
    if service in ("ingest", "web"):
        return ()
    module = importlib.import_module(f"services.{service}.bootstrap")
    consumes: tuple[str, ...] = module.CONSUMES
    return consumes


def produced_topics(service: str) -> set[str]:
    """The topics of the event types the service's outbox writes, and ingest's erasure
    tombstones."""
    found = {events.EVENT_KINDS[t].topic for t in schema.PRODUCES.get(service, ())}
    if service == "ingest":
        found |= {topic for topic, _ in erasure_tombstones(topics.CUSTOMERS)}
        # and the tombstones of an erased member's feedback (services/ingest/usecases/feedback)
        found |= {topic for topic, _ in erasure_tombstones(topics.FEEDBACK)}
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_writes_exactly_what_it_produces_and_dead_letters(service: str) -> None:
    grant = acls.GRANTS[service]
    dead_letters = {dead_letter_topic(topic) for topic in consumed_topics(service)}
    assert set(grant.writes) == produced_topics(service) | dead_letters


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_reads_exactly_what_it_consumes_in_its_own_group(service: str) -> None:
    grant = acls.GRANTS[service]
    consumed = consumed_topics(service)
    # and the partners, read without a group, by a consumer of events that name a partner
    partners = {topics.PARTNERS} if topics.checks_partners(consumed) else set()
    assert set(grant.reads) == set(consumed) | partners
    # What the service acts on is on topics it may read.
    acted_on = {events.EVENT_KINDS[t].topic for t in schema.CONSUMES.get(service, ())}
    assert acted_on <= set(grant.reads)
    assert set(grant.groups) == ({f"fedelta-{service}"} if grant.reads else set())


def test_the_consumer_group_is_the_one_the_event_consumer_joins() -> None:
    from shared.messaging import consumer

    source = importlib.util.find_spec(consumer.__name__)
    assert source is not None and source.origin is not None
    with open(source.origin) as file:
        assert 'group_id=f"fedelta-{self.service}"' in file.read()
    assert acls.consumer_group("points") == "fedelta-points"


def test_no_service_writes_another_services_main_topic() -> None:
    for spec in topics.MAIN_TOPICS:
        assert len(acls.writers(spec.name)) == 1, spec.name
    assert acls.owner(topics.PURCHASES) == "ingest"
    assert acls.owner(topics.CUSTOMERS) == "ingest"
    assert acls.owner(topics.POINTS) == "points"
    assert acls.owner(dead_letter_topic(topics.CUSTOMERS)) is None  # several write it


def test_insights_alone_writes_the_segments_which_points_and_engagement_read() -> None:
    # Issue 21: insights publishes membership changes, and reads no topic of its own making.
    assert acls.owner(topics.SEGMENTS) == "insights"
    grant = acls.GRANTS["insights"]
    assert topics.SEGMENTS not in grant.reads and grant.groups == ("fedelta-insights",)
    readers = {service for service, g in acls.GRANTS.items() if topics.SEGMENTS in g.reads}
    assert readers == {"points", "engagement"}
    # Each reader may dead-letter a segment event it cannot apply.
    for service in readers:
        assert dead_letter_topic(topics.SEGMENTS) in acls.GRANTS[service].writes, service


def test_the_web_touches_no_topic_and_joins_no_group() -> None:
    # Issue 22: the web calls the services' HTTP APIs; its runtime's relay has nothing to send.
    assert acls.GRANTS["web"] == acls.Grant(writes=(), reads=(), groups=())
    assert "web" not in schema.PRODUCES or not schema.PRODUCES["web"]
    assert "web" not in schema.CONSUMES
    mine = {a for a in acls.acls() if a.principal == "User:web"}
    assert mine == {acls.Acl("User:web", "CLUSTER", acls.CLUSTER, "IDEMPOTENT_WRITE")}


def test_every_producer_may_write_idempotently_and_no_one_is_given_everything() -> None:
    table = acls.acls()
    for service in SERVICES:
        mine = [a for a in table if a.principal == f"User:{service}"]
        assert acls.Acl(f"User:{service}", "CLUSTER", acls.CLUSTER, "IDEMPOTENT_WRITE") in mine
        assert {a.operation for a in mine} <= {"READ", "WRITE", "IDEMPOTENT_WRITE"}
        assert all(a.resource_name != "*" for a in mine)
    assert not [a for a in table if a.principal == f"User:{acls.ADMIN}"]  # a super user


def test_the_lines_are_what_the_broker_scripts_apply(capsys: pytest.CaptureFixture[str]) -> None:
    assert acls.main(["lines"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [a.line() for a in acls.acls()]
    assert "User:points TOPIC fedelta.purchases.v1 READ" in lines
    assert "User:points TOPIC fedelta.purchases.v1 WRITE" not in lines
    assert acls.main(["everything"]) == 2


# -- provenance ---------------------------------------------------------------------------


def test_a_purchase_from_ingest_on_behalf_of_any_partner_is_accepted() -> None:
    for partner in ("demo", "p-1", "x:y"):
        event = factories.purchase("c-1", partner_id=partner)
        assert provenance.refusal(event, topics.PURCHASES) is None


@pytest.mark.parametrize("source", ["points", "tiers", "ingestion", "urn:evil:ingest", "x"])
def test_a_purchase_from_anyone_else_is_refused(source: str) -> None:
    event = factories.purchase("c-1").model_copy(update={"source": source_uri(source)})
    assert isinstance(provenance.refusal(event, topics.PURCHASES), provenance.UnknownSource)


def test_a_points_event_must_come_from_points_even_on_a_topic_without_one_owner() -> None:
    now = datetime.now(UTC)
    earned = events.new_event(
        events.PointsEarned(
            customer_id="c-1", points=10, reason="purchase", available_at=now, expires_at=now
        ),
        source="points",
        subject="c-1",
        time=now,
    )
    assert provenance.refusal(earned, topics.POINTS) is None
    assert provenance.refusal(earned, "test-scratch-topic") is None
    forged = earned.model_copy(update={"source": source_uri("tiers")})
    assert provenance.refusal(forged, topics.POINTS) is not None
    assert provenance.refusal(forged, "test-scratch-topic") is not None  # its type's owner


@given(st.text(min_size=1, max_size=40))
def test_only_the_owner_or_its_sub_sources_pass(suffix: str) -> None:
    own = source_uri("ingest")
    assert provenance.owns("ingest", own)
    assert provenance.owns("ingest", f"{own}:{suffix}")
    assert provenance.owns("ingest", f"{own}{suffix}") == suffix.startswith(":")
    # Another service's name, or ingest's with anything but a sub-source after it, is not it.
    assert not provenance.owns("ingest", source_uri("points") + suffix)


# -- the connection ------------------------------------------------------------------------


def test_a_sasl_connection_without_credentials_fails_fast() -> None:
    with pytest.raises(KafkaCredentialsMissing):
        KafkaConnection("k:9092", "SASL_PLAINTEXT")
    with pytest.raises(KafkaCredentialsMissing):
        KafkaConnection.from_env({"KAFKA_BOOTSTRAP_SERVERS": "k:9092", "KAFKA_USERNAME": "a"})
    with pytest.raises(ValueError):
        KafkaConnection("k:9092", "SSL")  # type: ignore[arg-type]


def test_the_options_carry_the_principal_and_never_show_the_password() -> None:
    connection = KafkaConnection("k:9092").as_user("points", "s3cret")
    assert connection.options() == {
        "bootstrap_servers": "k:9092",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "points",
        "sasl_plain_password": "s3cret",
    }
    assert "s3cret" not in repr(connection)
    assert KafkaConnection.from_env(connection.env()) == connection
    assert KafkaConnection("k:9092").options() == {
        "bootstrap_servers": "k:9092",
        "security_protocol": "PLAINTEXT",
    }


def test_a_service_with_a_sasl_protocol_and_no_credentials_does_not_start() -> None:
    from services.points.settings import PointsSettings
    from tests.support.stack import ADMIN_TOKEN, sha256_hex

    base = {
        "database_url": "postgresql+asyncpg://u:p@h/d",
        "kafka_bootstrap_servers": "k:9092",
        "admin_token_sha256": sha256_hex(ADMIN_TOKEN),
    }
    with pytest.raises(ValidationError, match="kafka_username"):
        PointsSettings(**base, kafka_security_protocol="SASL_PLAINTEXT")  # type: ignore[arg-type]
    settings = PointsSettings(
        **base,  # type: ignore[arg-type]
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_username="points",
        kafka_password="pw",
    )
    from shared.runtime.process import kafka_connection

    assert kafka_connection(settings) == KafkaConnection(
        "k:9092", "SASL_PLAINTEXT", "SCRAM-SHA-512", "points", "pw"
    )


# -- the deployments take their principals from the table ----------------------------------

REPO = Path(__file__).resolve().parents[3]


def test_the_local_broker_refuses_what_no_acl_allows() -> None:
    template = (REPO / "deploy/kafka/server.properties.template").read_text()
    assert "allow.everyone.if.no.acl.found=false" in template
    assert "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer" in (
        template
    )
    assert "super.users=User:admin;User:controller\n" in template
    assert "listeners=SASL_PLAINTEXT://127.0.0.1:" in template
    assert "PLAINTEXT://127.0.0.1" not in template.replace("SASL_PLAINTEXT://", "")


def test_compose_gives_every_service_its_own_principal_and_applies_the_table() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    kafka = services["kafka"]["environment"]
    assert kafka["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert kafka["KAFKA_SUPER_USERS"] == "User:admin;User:controller"
    assert "PLAINTEXT://" not in kafka["KAFKA_LISTENERS"].replace("SASL_PLAINTEXT://", "")
    for service in SERVICES:
        env = services[service]["environment"]
        prefix = f"FEDELTA_{service.upper()}_KAFKA_"
        assert env[f"{prefix}USERNAME"] == service
        assert env[f"{prefix}SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
        assert env[f"{prefix}PASSWORD"].startswith(f"${{FEDELTA_KAFKA_{service.upper()}_PASSWORD:?")
    users = services["kafka-users"]
    assert set(users["environment"]) == {
        f"FEDELTA_KAFKA_{name.upper()}_PASSWORD" for name in (*SERVICES, "admin", "controller")
    }
    assert "python -m shared.messaging.acls apply" in " ".join(services["topics"]["command"])
    assert services["topics"]["environment"]["KAFKA_USERNAME"] == acls.ADMIN


def test_kubernetes_gives_every_service_its_own_principal_and_applies_the_table() -> None:
    base = REPO / "deploy/k8s/base"
    for service in SERVICES:
        config = (base / f"config/{service}.env").read_text().splitlines()
        prefix = f"FEDELTA_{service.upper()}_KAFKA_"
        assert f"{prefix}USERNAME={service}" in config
        assert f"{prefix}SECURITY_PROTOCOL=SASL_SSL" in config
        (deployment,) = [
            doc
            for doc in yaml.safe_load_all((base / f"{service}.yaml").read_text())
            if doc and doc["kind"] == "Deployment"
        ]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("valueFrom") for e in container["env"]}
        assert env[f"{prefix}PASSWORD"] == {
            "secretKeyRef": {"name": f"fedelta-{service}", "key": "kafka-password"}
        }
    job = yaml.safe_load((base / "kafka-acls-job.yaml").read_text())
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"][:4] == ["python", "-m", "shared.messaging.acls", "apply"]
    assert "kafka-acls-job.yaml" in (base / "kustomization.yaml").read_text()
