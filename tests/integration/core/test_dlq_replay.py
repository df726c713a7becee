"""`fedelta dlq` end to end on the real Kafka and PostgreSQL: an event a consumer cannot
apply (its partner is not configured yet) is dead-lettered; `dlq list` and `dlq show` say why
without the body; once the cause is fixed, `dlq replay` sends it back and it is applied once;
a second replay sends nothing, and a copy replayed again anyway changes nothing.

The consumer is the project's own (shared/messaging/consumer.py) with a minimal batch
handler, so what is proven is the dead-letter path and the replay, whatever the services' rules."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.clock import SystemClock
from shared.messaging import events
from shared.messaging.consumer import EventConsumer, Subscription
from shared.messaging.events import CloudEvent
from shared.messaging.kafka import ResilientProducer, client_options
from shared.messaging.topics import dead_letter_topic
from tests.integration.core.support import INBOX, enrolled, insert_enrolments, row_count
from tests.support.factories import enrolment
from tests.support.kafka import create_topics, read_all, records_if_any
from tests.support.polling import eventually
from tests.support.stack import REPO, Stack

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
SECRET_EMAIL = "replayed.person@example.com"


class PartnerNotConfigured(LookupError):
    """The dependency the poison event lacks until the operator adds it."""


class Handler:
    """Applies enrolments of configured partners; any other is the message's failure."""

    def __init__(self) -> None:
        self.partners = {"demo"}

    async def __call__(self, conn: AsyncConnection, batch: Sequence[CloudEvent]) -> None:
        enrolments = enrolled(batch)
        if any(e.partner_id not in self.partners for e in enrolments):
            raise PartnerNotConfigured("partner not configured")
        await insert_enrolments(conn, enrolments)


def with_contact(customer_id: str, partner_id: str) -> CloudEvent:
    """An enrolment with personal data in its body, which `dlq list` and `show` keep out."""
    return enrolment(
        customer_id,
        at=NOW,
        partner_id=partner_id,
        email=SECRET_EMAIL,
        consent=events.Consent(email=True, sms=False),
    )


async def fedelta(stack: Stack, *args: str) -> str:
    """The `fedelta` command as an operator runs it; its output, after asserting exit 0."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fedelta_cli.main",
        *args,
        cwd=REPO,
        env={
            **os.environ,
            "FEDELTA_DEV_ENV": str(stack.state_dir / "no-dev.env"),
            "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap_servers,
            **stack.kafka.env(),  # the admin principal, as dev.env gives it
            "COLUMNS": "300",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    text = output.decode()
    assert process.returncode == 0, text
    return text


async def inbox_rows(engine: AsyncEngine, event_id: str) -> int:
    async with engine.connect() as conn:
        count = await conn.scalar(
            sa.select(sa.func.count()).select_from(INBOX).where(INBOX.c.event_id == event_id)
        )
        return int(count or 0)


async def committed(stack: Stack, group: str, topic: str) -> int:
    """How far the consumer group has committed on the topic's one partition."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**client_options(stack.kafka))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return max((o.offset for tp, o in offsets.items() if tp.topic == topic), default=-1)


async def test_a_dead_letter_fixed_and_replayed_is_applied_once(
    stack: Stack, engine: AsyncEngine
) -> None:
    topic = f"fedelta.test-replay-{uuid.uuid4().hex[:8]}.v1"
    dlq = dead_letter_topic(topic)
    await create_topics(stack.kafka, topic, dlq)
    good = with_contact(f"replay-{uuid.uuid4().hex[:8]}", "demo")
    poison = with_contact(f"replay-{uuid.uuid4().hex[:8]}", "late-partner")
    publisher = ResilientProducer(stack.kafka, client_id="replay-test")
    try:
        await publisher.send_batch(
            [(topic, e.to_bytes(), e.subject.encode()) for e in (good, poison)]
        )
    finally:
        await publisher.close()

    handler = Handler()
    dead_letters = ResilientProducer(stack.kafka, client_id="replay-test-dlq")
    consumer = EventConsumer(
        service=f"replay-{uuid.uuid4().hex[:8]}",
        subscription=Subscription(
            topics=(topic,), event_types=frozenset({events.CUSTOMER_ENROLLED}), handle=handler
        ),
        bootstrap_servers=stack.kafka,
        engine=engine,
        inbox_table=INBOX,
        dead_letters=dead_letters,
        clock=SystemClock(),
        max_attempts=2,
        retry_backoff=0.01,
    )
    running = asyncio.create_task(consumer.run())
    try:
        await eventually(
            lambda: row_count(engine, good.subject), within=60, what="the good enrolment applied"
        )
        [dead] = await eventually(
            lambda: records_if_any(stack.kafka, dlq),
            within=60,
            what="the poison dead-lettered",
        )
        assert dict(dead.headers)["fedelta-error"] == b"PartnerNotConfigured"
        assert await row_count(engine, poison.subject) == 0

        listed = await fedelta(stack, "dlq", "list", "--topic", topic)
        assert f"{dlq}:0:0" in listed
        assert "PartnerNotConfigured" in listed
        assert poison.subject in listed  # the key: an id
        assert "1 dead letter(s)" in listed
        shown = await fedelta(stack, "dlq", "show", f"{dlq}:0:0")
        assert poison.id in shown and "fedelta.customer.enrolled.v1" in shown
        for output in (listed, shown):
            assert SECRET_EMAIL not in output  # never the body unless asked
        assert SECRET_EMAIL in await fedelta(stack, "dlq", "show", f"{dlq}:0:0", "--show-body")

        handler.partners.add("late-partner")  # the operator fixes the cause
        replayed = await fedelta(stack, "dlq", "replay", "--topic", topic)
        assert "replayed 1 dead letter(s)" in replayed
        await eventually(
            lambda: row_count(engine, poison.subject), within=60, what="the replayed event applied"
        )

        again = await fedelta(stack, "dlq", "replay", "--topic", topic)
        assert "replayed 0 dead letter(s)" in again
        assert "yes" in await fedelta(stack, "dlq", "list", "--topic", topic)  # replayed

        # Even replayed twice (say the replay group was reset), the inbox applies it once.
        copies = [r for r in await read_all(stack.kafka, topic) if r.offset >= 2]
        assert len(copies) == 1
        assert dict(copies[0].headers)["fedelta-replayed-from"] == f"{dlq}:0:0".encode()
        assert "fedelta-error" not in dict(copies[0].headers)
        again_publisher = ResilientProducer(stack.kafka, client_id="replay-2")
        try:
            await again_publisher.send_batch([(topic, copies[0].value, copies[0].key)])
        finally:
            await again_publisher.close()
        await eventually(  # offsets 0-1 published, 2 the replay, 3 the second copy
            lambda: _async_at_least(committed(stack, f"fedelta-{consumer.service}", topic), 4),
            within=60,
            what="the second copy consumed",
        )
    finally:
        await consumer.stop()
        await asyncio.wait_for(running, timeout=30)
        await dead_letters.close()

    assert await row_count(engine, poison.subject) == 1
    assert await inbox_rows(engine, poison.id) == 1
    assert len(await read_all(stack.kafka, dlq, settle=0.2)) == 1


async def _async_at_least(offset: Awaitable[int], least: int) -> bool:
    return await offset >= least
