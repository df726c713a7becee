"""No byte of an erased member's email or phone is left on any topic of the stack (issue 19:
erasure with a deadline), on the real broker and the real services.

A member enrolled through ingest with an email and a phone of their own goes through the whole
pipeline (points, tiers and notifications consume the enrolment; the welcome email is sent),
and a consumer's dead-letter copy of the enrolment sits on the customers' dead-letter topic;
the member gives feedback with a comment, dead-lettered too on the feedback
dead-letter topic. Then the enrolling partner erases them. Every topic the broker has (listed
from it: the main topics, the dead-letter topics, anything else) is read whole, record values,
keys and headers:

- a topic that deletes by retention must hold neither the email, the phone nor the comment (it would
  keep them for its retention, 7 days): only the compacted customers and feedback topics and
  their dead-letter topics may carry them, and only in records an erasure's
  tombstone of the same key follows;
- on those, the broker's cleaner must then remove them. The shared stack's topics keep the
  default lag (a day, and other tests read their history), so each one's records of the member
  go, partition by partition and in order, to a scratch topic created exactly as `fedelta
  topics create` creates it, with a lag of one second. Nothing else is written to the scratch
  topics but what ingest's quiet-partition writer writes: the member's partition is quiet after
  the erasure, and the writer's periodic tombstones are what roll its segment (without them
  the records stay in the active segment, which the cleaner never compacts).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.ingest.adapters.quiet_partitions import QuietPartitionWriter
from services.ingest.api.app import create_app as create_ingest
from services.ingest.domain.quiet_partitions import is_reserved
from services.ingest.settings import IngestSettings
from services.notifications.api.app import create_app as create_notifications
from services.points.api.app import create_app as create_points
from services.points.settings import PointsSettings
from services.tiers.api.app import create_app as create_tiers
from services.tiers.settings import TiersSettings
from shared.messaging import events, topics
from shared.messaging.kafka import KafkaConnection, ResilientProducer, client_options
from shared.messaging.topics import ALL_TOPICS, TopicSettings, dead_letter_topic
from tests.integration.core.support import new_pos
from tests.support.kafka import read_all
from tests.support.notifications import delivering_settings, mails_to
from tests.support.polling import eventually
from tests.support.services import READER, running, settings_for
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

DLQ = dead_letter_topic(topics.CUSTOMERS)
# Feedback's comment is personal data too: its compacted topic, keyed by
# the feedback, gets a tombstone of each of the member's feedback keys.
FEEDBACK_DLQ = dead_letter_topic(topics.FEEDBACK)
COMPACTED = {spec.name: spec for spec in ALL_TOPICS if spec.compacted}
SHORT_LAG = dataclasses.replace(TopicSettings.local(), max_compaction_lag_ms=1000)
# The log cleaner wakes every log.cleaner.backoff.ms (15 s by default) when it found nothing to
# do; a loaded CI machine needs a few of its rounds.
COMPACTION_DEADLINE_S = 180.0
SCRATCH_PREFIX = "fedelta.test.erasure-everywhere."


@dataclasses.dataclass(frozen=True)
class Pipeline:
    ingest: httpx.AsyncClient
    points: httpx.AsyncClient
    tiers: httpx.AsyncClient


@pytest_asyncio.fixture(scope="module")
async def pipeline(stack: Stack) -> AsyncIterator[Pipeline]:
    for name in ("ingest", "points", "tiers"):
        stack.migrate(name)
    notifications = delivering_settings(stack)
    ingest = settings_for(IngestSettings, stack, "ingest")
    async with (
        running(create_ingest, ingest) as (_, ingest_client),
        running(create_points, settings_for(PointsSettings, stack, "points")) as (_, points),
        running(create_tiers, settings_for(TiersSettings, stack, "tiers")) as (_, tiers),
        running(create_notifications, notifications),
    ):
        yield Pipeline(ingest_client, points, tiers)


async def test_no_byte_of_an_erased_email_or_phone_is_left_on_any_topic(
    stack: Stack, pipeline: Pipeline
) -> None:
    bootstrap = stack.kafka
    pos = await new_pos(pipeline.ingest, "Erasure Everywhere", "partner")
    token = uuid.uuid4().hex
    customer_id = f"cust-{token}"
    email = f"erase-everywhere-{token}@example.com"
    phone = f"+35845{uuid.uuid4().int % 10**7:07d}"
    secrets = [email.encode(), phone.encode()]
    enrolled = await pos.enrol(
        customer_id, email=email, phone=phone, consent={"email": True, "sms": True}
    )
    assert enrolled.status_code == 202, enrolled.text

    # The whole pipeline had the member: the welcome email went, points and tiers know them.
    await eventually(lambda: _mailed(stack, email), within=120, what="the welcome email")
    await eventually(
        lambda: _ok(pipeline.points, f"/v1/customers/{customer_id}/balance"),
        within=60,
        what="the member in points",
    )
    await eventually(
        lambda: _ok(pipeline.tiers, f"/v1/customers/{customer_id}/tier"),
        within=60,
        what="the member in tiers",
    )
    # A consumer gave up on the enrolment: its dead-letter copy, as the consumer writes it.
    [enrolment] = await eventually(
        lambda: _keyed(bootstrap, topics.CUSTOMERS, customer_id), within=60, what="enrolment"
    )
    await _copy(bootstrap, DLQ, [enrolment])
    # Feedback with a comment of the member's own, and a consumer's dead-letter copy of it.
    comment = f"erase-comment-{token}"
    secrets.append(comment.encode())
    given = await pos.send(
        "POST",
        "/v1/feedback",
        {
            "feedback_id": f"fb-{token}",
            "customer_id": customer_id,
            "kind": "nps",
            "score": 3,
            "comment": comment,
        },
    )
    assert given.status_code == 202, given.text
    feedback_key = events.feedback_key(pos.partner_id, f"fb-{token}")
    [feedback] = await eventually(
        lambda: _keyed(bootstrap, topics.FEEDBACK, feedback_key), within=60, what="feedback"
    )
    await _copy(bootstrap, FEEDBACK_DLQ, [feedback])
    keys = {
        topics.CUSTOMERS: customer_id,
        DLQ: customer_id,
        topics.FEEDBACK: feedback_key,
        FEEDBACK_DLQ: feedback_key,
    }

    erased = await pos.send(
        "DELETE", f"/v1/customers/{customer_id}", raw=b"", headers={"Idempotency-Key": token}
    )
    assert erased.status_code == 202, erased.text
    for topic, key in keys.items():
        await _tombstoned(bootstrap, topic, key)

    carrying = await _carrying_on_every_topic(bootstrap, secrets)
    # Only the compacted topics may carry them (a topic that deletes by retention would keep
    # them for days), and only in records that a tombstone of their key follows.
    assert set(carrying) <= set(COMPACTED), sorted(set(carrying) - set(COMPACTED))
    assert set(carrying) == set(keys)
    for topic, found in carrying.items():
        assert {r.key for r in found} == {keys[topic].encode()}, topic

    # The broker's cleaner, with the configs of `fedelta topics create`, a one-second lag and
    # no traffic but the quiet-partition writer's.
    partitions = {topic: {r.partition for r in found} for topic, found in carrying.items()}
    copies = {
        topic: [
            r
            for r in await read_all(bootstrap, topic)
            if r.key == keys[topic].encode() and r.partition in partitions[topic]
        ]
        for topic in carrying
    }
    left = await _compacted_with_the_writer(bootstrap, copies, secrets)
    assert left == {}, {topic: len(records) for topic, records in left.items()}


async def _carrying_on_every_topic(
    bootstrap: str | KafkaConnection, secrets: list[bytes]
) -> dict[str, list[Any]]:
    """Each topic of the broker (internal ones too) with its records that hold a secret in
    their value, key or a header; topics that disappear while being read (other tests'
    scratch topics) are left out."""
    admin = AIOKafkaAdminClient(**client_options(bootstrap))
    await admin.start()
    try:
        names = sorted(await admin.list_topics())
        assert {spec.name for spec in ALL_TOPICS} <= set(names)
        carrying: dict[str, list[Any]] = {}
        for name in names:
            try:
                records = await read_all(bootstrap, name, settle=0.2)
            except Exception:
                if name in await admin.list_topics():
                    raise
                continue
            found = [r for r in records if _holds(r, secrets)]
            if found:
                carrying[name] = found
        return carrying
    finally:
        await admin.close()


def _holds(record: Any, secrets: list[bytes]) -> bool:
    parts = [record.value or b"", record.key or b""]
    parts += [bytes(value or b"") for _, value in record.headers or ()]
    return any(secret in part for secret in secrets for part in parts)


async def _compacted_with_the_writer(
    bootstrap: str | KafkaConnection, copies: dict[str, list[Any]], secrets: list[bytes]
) -> dict[str, list[Any]]:
    """Copies each topic's records to a scratch topic made as that topic is (with SHORT_LAG and
    its partition count), each on its partition, runs the quiet-partition writer on the scratch
    topics alone, and returns the records that still hold a secret once none does or the
    deadline passed."""
    scratch = {topic: f"{SCRATCH_PREFIX}{uuid.uuid4().hex}" for topic in copies}
    admin = AIOKafkaAdminClient(**client_options(bootstrap))
    await admin.start()
    producer = ResilientProducer(bootstrap, client_id="fedelta-test-erasure-everywhere")
    writer = QuietPartitionWriter(producer, interval=1.0, topics=list(scratch.values()))
    running_writer: asyncio.Task[None] | None = None
    try:
        await admin.create_topics(
            [
                NewTopic(
                    name,
                    SHORT_LAG.partitions,
                    SHORT_LAG.replication_factor,
                    topic_configs=COMPACTED[topic].config(SHORT_LAG),
                )
                for topic, name in scratch.items()
            ]
        )
        for topic, records in copies.items():
            await _copy(bootstrap, scratch[topic], records, keep_partition=True)
            assert await _scratch_left(bootstrap, [scratch[topic]], secrets)  # there, first
        running_writer = asyncio.create_task(writer.run())
        deadline = time.monotonic() + COMPACTION_DEADLINE_S
        while left := await _scratch_left(bootstrap, list(scratch.values()), secrets):
            if time.monotonic() > deadline:
                return left
            await asyncio.sleep(1.0)  # between cleaner rounds; the deadline bounds the wait
        # The writer did write there: one reserved key's tombstone per partition, at least.
        written = await read_all(bootstrap, scratch[topics.CUSTOMERS], settle=0.2)
        assert {r.partition for r in written if is_reserved(r.key)} == set(
            range(SHORT_LAG.partitions)
        )
        return {}
    finally:
        await writer.stop()
        if running_writer is not None:
            await asyncio.wait_for(running_writer, timeout=30)
        await producer.close()
        try:
            await admin.delete_topics(list(scratch.values()))
        finally:
            await admin.close()


async def _scratch_left(
    bootstrap: str | KafkaConnection, names: Sequence[str], secrets: list[bytes]
) -> dict[str, list[Any]]:
    left = {}
    for name in names:
        found = [r for r in await read_all(bootstrap, name, settle=0.2) if _holds(r, secrets)]
        if found:
            left[name] = found
    return left


async def _copy(
    bootstrap: str | KafkaConnection,
    topic: str,
    records: list[Any],
    *,
    keep_partition: bool = False,
) -> None:
    producer = AIOKafkaProducer(**client_options(bootstrap), acks="all")
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(
                topic,
                record.value,
                key=record.key,
                headers=list(record.headers or ()),
                partition=record.partition if keep_partition else None,
            )
    finally:
        await producer.stop()


async def _keyed(
    bootstrap: str | KafkaConnection, topic: str, customer_id: str
) -> list[Any] | None:
    found = [r for r in await read_all(bootstrap, topic) if r.key == customer_id.encode()]
    return found or None


async def _tombstoned(bootstrap: str | KafkaConnection, topic: str, customer_id: str) -> None:
    """Waits until the customer's last record on `topic` is a tombstone."""

    async def last_is_a_tombstone() -> bool:
        found = await _keyed(bootstrap, topic, customer_id)
        return found is not None and found[-1].value is None

    await eventually(last_is_a_tombstone, within=60, what=f"the erasure's tombstone on {topic}")


async def _mailed(stack: Stack, address: str) -> bool:
    return bool(mails_to(stack, address))


async def _ok(client: httpx.AsyncClient, path: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return (await client.get(path, headers=READER)).status_code == 200
    return False
