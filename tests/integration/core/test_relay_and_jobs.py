"""The outbox relay and the jobs on the real PostgreSQL and Kafka, on the points database
(any service's would do: the outbox, inbox, trigger and lock are the same everywhere)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import FixedClock
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent
from shared.messaging.kafka import ResilientProducer
from shared.messaging.outbox import Outbox
from shared.messaging.relay import OutboxRelay, PostgresWakeups
from shared.runtime.process import Runtime, service_runtime
from shared.settings import ServiceSettings
from shared.storage.db import define_outbox
from shared.storage.locks import lock_name, try_lock_for_session, unlock
from shared.storage.retention import PURGE_INBOX, PurgeOlderThan, purge_idempotency_keys
from shared.web.http import create_service_app
from shared.web.idempotency import define_idempotency_keys
from tests.integration.core.support import INBOX
from tests.support.database import engine_for
from tests.support.factories import purchase
from tests.support.kafka import events_for
from tests.support.polling import eventually
from tests.support.services import ADMIN, READER, running
from tests.support.stack import ADMIN_TOKEN, READ_TOKEN, Stack, sha256_hex

pytestmark = pytest.mark.integration

OUTBOX = define_outbox(sa.MetaData())
IDEMPOTENCY_KEYS = define_idempotency_keys(sa.MetaData())

# The fallback poll, set so long that only a wake-up can explain a prompt publication.
NEVER = 3600.0
PROMPTLY = 10.0
# Far before anything else in these databases, so the purges below touch only these rows.
AS_OF = datetime(2001, 6, 1, tzinfo=UTC)
RETENTION = timedelta(days=30)


@pytest.fixture
async def relay(stack: Stack, engine: AsyncEngine) -> AsyncIterator[OutboxRelay]:
    producer = ResilientProducer(stack.kafka, client_id="test-relay")
    relay = OutboxRelay(
        engine,
        OUTBOX,
        producer,
        poll_interval=NEVER,
        batch_size=1000,
        wake_source=PostgresWakeups.for_engine(engine),
    )
    running_relay = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        await relay.stop()
        await asyncio.wait_for(running_relay, timeout=10)
        await producer.close()


def purchase_event(customer_id: str, n: int) -> CloudEvent:
    """The n-th purchase of a test, its total 10.00 + n."""
    purchase_id = f"p-{n}-{uuid.uuid4()}"
    return purchase(customer_id, Decimal("10.00") + n, at=AS_OF, purchase_id=purchase_id)


async def write_to_outbox(engine: AsyncEngine, batch: list[CloudEvent]) -> list[int]:
    """Commits rows as another service's transaction would: no in-process notify."""
    async with engine.begin() as conn:
        await Outbox(conn, OUTBOX, FixedClock(AS_OF)).add_all(
            [(topics.PURCHASES, event.subject, event) for event in batch]
        )
        ids = await conn.execute(
            sa.select(OUTBOX.c.id)
            .where(OUTBOX.c.event_id.in_([event.id for event in batch]))
            .order_by(OUTBOX.c.id)
        )
        return list(ids.scalars())


async def gone(engine: AsyncEngine, ids: list[int]) -> bool:
    async with engine.connect() as conn:
        left = await conn.scalar(
            sa.select(sa.func.count()).select_from(OUTBOX).where(OUTBOX.c.id.in_(ids))
        )
    return left == 0


async def published(engine: AsyncEngine, batch: list[CloudEvent], what: str) -> None:
    ids = await write_to_outbox(engine, batch)
    await eventually(lambda: gone(engine, ids), within=PROMPTLY, interval=0.05, what=what)


async def listener_pid(engine: AsyncEngine) -> int | None:
    async with engine.connect() as conn:
        pid = await conn.scalar(
            sa.text(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND query ILIKE 'LISTEN%'"
            )
        )
    return int(pid) if pid is not None else None


async def test_a_row_committed_elsewhere_is_published_on_commit_not_by_the_poll(
    stack: Stack, engine: AsyncEngine, relay: OutboxRelay
) -> None:
    customer = f"c-{uuid.uuid4()}"
    # The first row may be found by the relay's first poll; once it is gone, the relay
    # waits for a wake-up (or NEVER seconds).
    await published(engine, [purchase_event(customer, 1)], "the first row published")

    await published(engine, [purchase_event(customer, 2)], "a row published on NOTIFY")

    on_topic = await events_for(stack.kafka, topics.PURCHASES, customer)
    assert [e.data_as(events.PurchaseCompleted).total for e in on_topic] == [
        Decimal("11.00"),
        Decimal("12.00"),
    ]


async def test_the_listener_comes_back_after_its_connection_is_killed(
    engine: AsyncEngine, relay: OutboxRelay
) -> None:
    await published(engine, [purchase_event(f"c-{uuid.uuid4()}", 1)], "a first row")
    killed = await eventually(lambda: listener_pid(engine), what="the relay's LISTEN session")

    async with engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.pg_terminate_backend(killed)))

    async def listening_again() -> bool:
        pid = await listener_pid(engine)
        return pid is not None and pid != killed

    await eventually(listening_again, within=PROMPTLY, what="a new LISTEN session")
    await published(engine, [purchase_event(f"c-{uuid.uuid4()}", 2)], "a row after reconnect")


async def test_thousands_of_rows_go_out_in_order_and_parse_as_cloud_events(
    stack: Stack, engine: AsyncEngine, relay: OutboxRelay
) -> None:
    customers = [f"c-{uuid.uuid4()}" for _ in range(3)]
    batch = [purchase_event(customers[n % 3], n) for n in range(2500)]

    await published(engine, batch, "2,500 rows published")

    on_topic = await events_for(stack.kafka, topics.PURCHASES, customers[0])
    expected = [event.id for event in batch if event.subject == customers[0]]
    assert [event.id for event in on_topic] == expected


async def test_a_cycle_reports_the_backlog_it_left_and_the_age_of_its_oldest_row(
    stack: Stack, engine: AsyncEngine
) -> None:
    """A relay publishing ten rows a cycle leaves fifteen of twenty-five: the backlog gauges
    say so after its first cycle (the rows it deleted are not counted), and nothing after the
    last."""
    producer = ResilientProducer(stack.kafka, client_id="test-relay-backlog")
    now = AS_OF + timedelta(minutes=2)
    relay = OutboxRelay(engine, OUTBOX, producer, batch_size=10, clock=FixedClock(now))
    customer = f"c-{uuid.uuid4()}"
    await write_to_outbox(engine, [purchase_event(customer, n) for n in range(25)])
    try:
        assert await relay.publish_pending() == 10
        assert _gauge("fedelta_outbox_backlog") == 15
        assert _gauge("fedelta_outbox_oldest_age_seconds") == 120
        while await relay.publish_pending():
            pass
        assert _gauge("fedelta_outbox_backlog") == 0
    finally:
        await producer.close()


def _gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"table": OUTBOX.name})


async def claims(engine: AsyncEngine, prefix: str) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.scalars(
            sa.select(INBOX.c.event_id).where(INBOX.c.event_id.startswith(prefix))
        )
        return set(rows)


async def claim_aged(engine: AsyncEngine, prefix: str, ages_in_days: dict[str, float]) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            INBOX.insert(),
            [
                dict(
                    event_id=f"{prefix}{name}",
                    event_type=events.PURCHASE_COMPLETED,
                    received_at=AS_OF - timedelta(days=age),
                )
                for name, age in ages_in_days.items()
            ],
        )


async def test_purge_inbox_deletes_only_claims_older_than_the_retention(
    engine: AsyncEngine,
) -> None:
    prefix = f"purge-{uuid.uuid4()}-"
    old = {f"old-{n}": 30.5 + n for n in range(5)}
    await claim_aged(engine, prefix, {**old, "edge": 30, "recent": 29, "today": 0})
    # Small chunks, so the purge goes through several transactions.
    job = PurgeOlderThan(PURGE_INBOX, INBOX, "received_at", RETENTION, chunk_size=2)

    first = await job.run(engine, AS_OF)
    second = await job.run(engine, AS_OF)

    assert first["deleted"] == 5
    assert second["deleted"] == 0
    assert await claims(engine, prefix) == {f"{prefix}{n}" for n in ("edge", "recent", "today")}


async def test_purge_idempotency_keys_deletes_only_keys_older_than_the_retention(
    stack: Stack,
) -> None:
    scope = f"purge-{uuid.uuid4()}"
    async with engine_for(stack, "ingest") as ingest:
        async with ingest.begin() as conn:
            await conn.execute(
                IDEMPOTENCY_KEYS.insert(),
                [
                    dict(
                        scope=scope,
                        key=key,
                        request_hash="h",
                        status_code=201,
                        response={},
                        created_at=AS_OF - timedelta(days=age),
                    )
                    for key, age in {"old": 31, "kept": 1}.items()
                ],
            )
        job = purge_idempotency_keys(IDEMPOTENCY_KEYS, RETENTION)

        first = await job.run(ingest, AS_OF)
        second = await job.run(ingest, AS_OF)

        async with ingest.connect() as conn:
            left = set(
                await conn.scalars(
                    sa.select(IDEMPOTENCY_KEYS.c.key).where(IDEMPOTENCY_KEYS.c.scope == scope)
                )
            )
    assert (first["deleted"], second["deleted"], left) == (1, 0, {"kept"})


@pytest.fixture(scope="module")
async def admin_api(stack: Stack, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    settings = ServiceSettings(
        database_url=stack.database_url("points"),
        kafka_bootstrap_servers=stack.kafka_bootstrap_servers,
        admin_token_sha256=sha256_hex(ADMIN_TOKEN),
        read_token_sha256=sha256_hex(READ_TOKEN),
        port=18000,
        retention_days=30,
        run_workers=False,
    )

    async def bootstrap(settings: ServiceSettings) -> Runtime:
        return service_runtime("jobs-test", settings, FixedClock(AS_OF), outbox=OUTBOX, inbox=INBOX)

    def create_app(settings: ServiceSettings) -> FastAPI:
        return create_service_app(
            name="jobs-test", settings=settings, bootstrap=bootstrap, routers=[]
        )

    async with running(create_app, settings) as (_, client):
        yield client


async def test_a_job_needs_the_admin_scope(admin_api: httpx.AsyncClient) -> None:
    anonymous = await admin_api.post("/v1/admin/jobs/purge-inbox")
    reader = await admin_api.post("/v1/admin/jobs/purge-inbox", headers=READER)

    assert (anonymous.status_code, reader.status_code) == (401, 403)
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert reader.headers["content-type"] == "application/problem+json"


async def test_an_unknown_job_is_a_404_naming_the_known_ones(admin_api: httpx.AsyncClient) -> None:
    response = await admin_api.post("/v1/admin/jobs/defragment", headers=ADMIN)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "purge-inbox" in response.json()["detail"]


@pytest.mark.parametrize(
    "as_of", ["2001-06-01", "2001-06-01T00:00:00", "2001-06-01T00:00:00 01:00"]
)
async def test_an_as_of_that_is_not_rfc3339_is_a_422(
    admin_api: httpx.AsyncClient, as_of: str
) -> None:
    response = await admin_api.post(
        "/v1/admin/jobs/purge-inbox", params={"as_of": as_of}, headers=ADMIN
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_all_runs_every_job_as_of_the_given_instant(
    admin_api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    prefix = f"admin-{uuid.uuid4()}-"
    await claim_aged(engine, prefix, {"old": 45, "recent": 15})
    # As of 20 days later, the "recent" claim is 35 days old too.
    later = (AS_OF + timedelta(days=20)).isoformat()

    first = await admin_api.post("/v1/admin/jobs/all", params={"as_of": later}, headers=ADMIN)
    again = await admin_api.post("/v1/admin/jobs/all", params={"as_of": later}, headers=ADMIN)

    assert first.status_code == 200, first.text
    assert [job["job"] for job in first.json()["jobs"]] == [PURGE_INBOX]
    assert first.json()["jobs"][0]["deleted"] >= 2
    assert again.json()["jobs"][0]["deleted"] == 0
    assert await claims(engine, prefix) == set()


async def test_a_job_defaults_to_now_and_keeps_what_is_recent(
    admin_api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    prefix = f"admin-now-{uuid.uuid4()}-"
    await claim_aged(engine, prefix, {"old": 31, "recent": 29})

    response = await admin_api.post("/v1/admin/jobs/purge-inbox", headers=ADMIN)

    assert response.status_code == 200, response.text
    assert response.json()["as_of"] == AS_OF.isoformat()  # the runtime's clock
    assert await claims(engine, prefix) == {f"{prefix}recent"}


async def test_a_job_running_on_another_instance_is_a_409(
    admin_api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    async with engine.connect() as other_instance:
        name = lock_name("job", PURGE_INBOX)
        assert await try_lock_for_session(other_instance, name)
        try:
            response = await admin_api.post("/v1/admin/jobs/purge-inbox", headers=ADMIN)
        finally:
            await unlock(other_instance, name)

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    after = await admin_api.post("/v1/admin/jobs/purge-inbox", headers=ADMIN)
    assert after.status_code == 200


async def test_every_consuming_service_gets_the_inbox_purge(stack: Stack) -> None:
    settings = ServiceSettings(
        database_url=stack.database_url("points"),
        kafka_bootstrap_servers=stack.kafka_bootstrap_servers,
        admin_token_sha256=sha256_hex(ADMIN_TOKEN),
        port=18000,
    )
    runtime = service_runtime("jobs-test", settings, FixedClock(AS_OF), outbox=OUTBOX, inbox=INBOX)

    try:
        assert [job.name for job in runtime.jobs] == [PURGE_INBOX]
        assert "jobs" in [worker.name for worker in runtime.workers]
    finally:
        await runtime.aclose()
