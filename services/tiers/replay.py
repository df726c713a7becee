"""The replay after a rule change: every customer's tier rebuilt under a new program from the
purchase history kept in Kafka, then made live in one transaction.

1. Load. The purchases and customers topics are read from their earliest offset by a
   reader of their own (partitions assigned, no consumer group: the live group's offsets are
   left alone) into the replay tables. Each poll is one transaction that stores its records
   and the read positions together, so a crashed replay resumes exactly where it stopped.
2. Compute. Each customer the load touched has their tier rebuilt from their whole history
   (`domain.rebuild`), a chunk of customers per transaction.
3. Switch. Once a load pass finds little new, one transaction locks the live tables against
   writers (the live consumer, the jobs and overrides wait; reads go on), reads the end
   offsets, loads and computes the tail up to them, and makes the rebuilt state live: tiers
   that differ are written with a history row and a `tier.changed` in the outbox, and the
   activity the live consumer has not applied yet is copied, so that it counts once when
   the live consumer reaches it. The replay is then never behind the live state: whatever
   the live consumer applied came from offsets below the ends read under the lock.

The live service keeps consuming and answering throughout, on the live tables.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.tiers.adapters import tables
from services.tiers.adapters.program_file import program_json
from services.tiers.adapters.repository import SqlTierRepository
from services.tiers.domain.model import (
    CustomerTier,
    Program,
    QualifyingActivity,
    TierChange,
    purchase_activity_id,
    refund_activity_id,
)
from services.tiers.domain.rebuild import attribute_refunds, rebuild_customer, switch_change
from services.tiers.handlers import HANDLED_TYPES, announce_replay_change
from shared.clock import Clock
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent
from shared.messaging.kafka import EVENT_TYPE_HEADER
from shared.messaging.outbox import CollectingSink, Outbox

log = logging.getLogger(__name__)

REPLAYED_TOPICS = (topics.CUSTOMERS, topics.PURCHASES)
RUNNING, SWITCHED, ABANDONED = "running", "switched", "abandoned"
# Held for the whole command: two replay commands at once would read the topics twice over.
_REPLAY_LOCK = 7_261_001
# Empty polls in a row after which the offsets left below the ends are taken to hold nothing.
_IDLE_POLLS = 30


class ReplayRefused(Exception):
    """The replay cannot start as asked; the message says what to do."""


def program_text(program: Program) -> str:
    """The program as canonical JSON: what a resumed replay must be replaying again, and
    what the live service reads back once the switch has made it the program in force."""
    return program_json(program)


# -- reading records ---------------------------------------------------------------------


@dataclass
class ReplayBatch:
    """What one poll's records mean to the replay."""

    activities: dict[str, QualifyingActivity] = field(default_factory=dict)
    refunded: dict[str, str] = field(default_factory=dict)  # refund id -> its purchase's id
    enrolments: dict[str, datetime | None] = field(default_factory=dict)  # None: a buyer
    events: int = 0
    skipped: int = 0  # unreadable, or refused like the live consumer refuses them


def read_records(messages: Sequence[Any], program: Program) -> ReplayBatch:
    """The facts in these records, the first of each kept. What the live consumer
    dead-letters (unreadable, invalid, another currency) is skipped and counted."""
    batch = ReplayBatch()
    for message in messages:
        if message.value is None:
            continue  # a tombstone: an erased profile
        announced = _header(message, EVENT_TYPE_HEADER)
        if announced is not None and announced not in HANDLED_TYPES:
            continue
        try:
            event = CloudEvent.from_bytes(message.value)
            if event.type not in HANDLED_TYPES:
                continue
            _read_event(event, program, batch)
        except (ValidationError, ValueError):
            batch.skipped += 1
            continue
        batch.events += 1
    return batch


def _read_event(event: CloudEvent, program: Program, batch: ReplayBatch) -> None:
    if event.type == events.PURCHASE_COMPLETED:
        purchase = event.data_as(events.PurchaseCompleted)
        if purchase.currency != program.currency:
            raise ValueError("a purchase in another currency")
        activity = QualifyingActivity(
            activity_id=purchase_activity_id(purchase.partner_id, purchase.purchase_id),
            customer_id=purchase.customer_id,
            amount=purchase.total,
            occurred_at=purchase.occurred_at,
        )
        batch.activities.setdefault(activity.activity_id, activity)
        batch.enrolments.setdefault(purchase.customer_id, None)
    elif event.type == events.PURCHASE_REFUNDED:
        refund = event.data_as(events.PurchaseRefunded)
        activity = QualifyingActivity(
            activity_id=refund_activity_id(refund.partner_id, refund.refund_id),
            customer_id=refund.customer_id,
            amount=-refund.amount,
            occurred_at=refund.occurred_at,
        )
        batch.activities.setdefault(activity.activity_id, activity)
        batch.refunded[activity.activity_id] = purchase_activity_id(
            refund.partner_id, refund.purchase_id
        )
    else:
        enrolled = event.data_as(
            events.CustomerEnrolled
            if event.type == events.CUSTOMER_ENROLLED
            else events.CustomerUpdated
        )
        if batch.enrolments.get(enrolled.customer_id) is None:
            batch.enrolments[enrolled.customer_id] = enrolled.enrolled_at


def _header(message: Any, name: str) -> str | None:
    for key, value in getattr(message, "headers", None) or ():
        if key == name:
            return bytes(value).decode(errors="replace")
    return None


# -- the replay tables -------------------------------------------------------------------


class ReplayStore:
    """The replay's statements, on the caller's connection and transaction; set-based."""

    def __init__(self, conn: AsyncConnection, replay_id: str) -> None:
        self._conn = conn
        self._id = replay_id

    async def save_batch(self, batch: ReplayBatch, positions: dict[TopicPartition, int]) -> None:
        conn, rid = self._conn, self._id
        if batch.activities:
            listed = sorted(batch.activities.values(), key=lambda a: a.activity_id)
            await conn.execute(
                _SAVE_ACTIVITY,
                {
                    "rid": rid,
                    "ids": [a.activity_id for a in listed],
                    "customers": [a.customer_id for a in listed],
                    "amounts": [a.amount for a in listed],
                    "occurred": [a.occurred_at for a in listed],
                    "refunded": [batch.refunded.get(a.activity_id) for a in listed],
                },
            )
        if batch.enrolments:
            known = sorted(batch.enrolments.items())
            await conn.execute(
                _SAVE_CUSTOMERS,
                {"rid": rid, "ids": [c for c, _ in known], "enrolled": [e for _, e in known]},
            )
        refunders = sorted({a.customer_id for a in batch.activities.values()} - {*batch.enrolments})
        if refunders:
            await conn.execute(_MARK_STALE, {"rid": rid, "ids": refunders})
        if positions:
            ordered = sorted(positions.items(), key=lambda p: (p[0].topic, p[0].partition))
            await conn.execute(
                _SAVE_OFFSETS,
                {
                    "rid": rid,
                    "topics": [tp.topic for tp, _ in ordered],
                    "partitions": [tp.partition for tp, _ in ordered],
                    "offsets": [offset for _, offset in ordered],
                },
            )
        await conn.execute(
            _COUNT_EVENTS, {"rid": rid, "events": batch.events, "skipped": batch.skipped}
        )

    async def offsets(self) -> dict[TopicPartition, int]:
        rows = await self._conn.execute(
            sa.select(tables.tier_replay_offsets).where(
                tables.tier_replay_offsets.c.replay_id == self._id
            )
        )
        return {TopicPartition(row.topic, row.partition): row.next_offset for row in rows}

    async def lock_to_compute(
        self, as_of: datetime, *, after: str, limit: int
    ) -> dict[str, datetime | None]:
        """Up to `limit` customers after `after` with activity not yet in their tier or a
        review due by `as_of`: their enrolment instant, in customer_id order."""
        rows = await self._conn.execute(
            _LOCK_TO_COMPUTE, {"rid": self._id, "as_of": as_of, "after": after, "limit": limit}
        )
        return {row.customer_id: row.enrolled_at for row in rows}

    async def histories(
        self, customer_ids: Sequence[str]
    ) -> dict[str, tuple[list[QualifyingActivity], dict[str, str]]]:
        """Each customer's activity, and which of it are refunds (of which purchase)."""
        rows = await self._conn.execute(_HISTORIES, {"rid": self._id, "ids": list(customer_ids)})
        found: dict[str, tuple[list[QualifyingActivity], dict[str, str]]] = {
            customer_id: ([], {}) for customer_id in customer_ids
        }
        for row in rows:
            listed, refunded = found[row.customer_id]
            listed.append(
                QualifyingActivity(
                    activity_id=row.activity_id,
                    customer_id=row.customer_id,
                    amount=row.amount,
                    occurred_at=row.occurred_at,
                )
            )
            if row.refunded_activity_id is not None:
                refunded[row.activity_id] = row.refunded_activity_id
        return found

    async def save_tiers(self, rebuilt: Sequence[CustomerTier], unknown: Sequence[str]) -> None:
        if rebuilt:
            await self._conn.execute(
                _SAVE_TIERS,
                {
                    "rid": self._id,
                    "ids": [c.customer_id for c in rebuilt],
                    "tiers": [c.tier for c in rebuilt],
                    "sinces": [c.since for c in rebuilt],
                    "reviews": [c.review_at for c in rebuilt],
                },
            )
        if unknown:
            await self._conn.execute(_NOTHING_TO_REBUILD, {"rid": self._id, "ids": list(unknown)})

    async def differing(self, at: datetime) -> list[tuple[CustomerTier, str | None]]:
        """The rebuilt customers whose live row differs (or is missing), with their live
        tier; customers under a staff override still in force are left out."""
        rows = await self._conn.execute(_DIFFERING, {"rid": self._id, "at": at})
        return [
            (
                CustomerTier(
                    customer_id=row.customer_id,
                    tier=row.tier,
                    since=row.since,
                    review_at=row.review_at,
                    enrolled_at=row.enrolled_at,
                ),
                row.old_tier,
            )
            for row in rows
        ]

    async def make_live(self, customers: Sequence[CustomerTier]) -> None:
        await self._conn.execute(_COPY_ACTIVITY, {"rid": self._id})
        if customers:
            await self._conn.execute(
                _UPSERT_LIVE,
                {
                    "ids": [c.customer_id for c in customers],
                    "tiers": [c.tier for c in customers],
                    "sinces": [c.since for c in customers],
                    "reviews": [c.review_at for c in customers],
                    "enrolled": [c.enrolled_at for c in customers],
                },
            )


_SAVE_ACTIVITY = sa.text(
    "INSERT INTO tier_replay_activity "
    "(replay_id, activity_id, customer_id, amount, occurred_at, refunded_activity_id) "
    "SELECT :rid, * FROM unnest(CAST(:ids AS text[]), CAST(:customers AS text[]), "
    "CAST(:amounts AS numeric[]), CAST(:occurred AS timestamptz[]), "
    "CAST(:refunded AS text[])) "
    "ON CONFLICT (replay_id, activity_id) DO NOTHING"
)

# A customer seen again is stale again: their tier is rebuilt with what came.
_SAVE_CUSTOMERS = sa.text(
    "INSERT INTO tier_replay_customers (replay_id, customer_id, enrolled_at, stale) "
    "SELECT :rid, id, enrolled, true "
    "FROM unnest(CAST(:ids AS text[]), CAST(:enrolled AS timestamptz[])) AS c(id, enrolled) "
    "ON CONFLICT (replay_id, customer_id) DO UPDATE SET stale = true, "
    "enrolled_at = COALESCE(tier_replay_customers.enrolled_at, EXCLUDED.enrolled_at)"
)

_MARK_STALE = sa.text(
    "UPDATE tier_replay_customers SET stale = true "
    "WHERE replay_id = :rid AND customer_id = ANY(CAST(:ids AS text[])) AND NOT stale"
)

_SAVE_OFFSETS = sa.text(
    "INSERT INTO tier_replay_offsets (replay_id, topic, partition, next_offset) "
    "SELECT :rid, * FROM unnest(CAST(:topics AS text[]), CAST(:partitions AS integer[]), "
    "CAST(:offsets AS bigint[])) "
    "ON CONFLICT (replay_id, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset"
)

_COUNT_EVENTS = sa.text(
    "UPDATE tier_replays SET events = events + :events, skipped = skipped + :skipped "
    "WHERE replay_id = :rid"
)

_LOCK_TO_COMPUTE = sa.text(
    "SELECT customer_id, enrolled_at FROM tier_replay_customers "
    "WHERE replay_id = :rid AND (stale OR review_at <= :as_of) AND customer_id > :after "
    "ORDER BY customer_id LIMIT :limit FOR UPDATE"
)

_HISTORIES = sa.text(
    "SELECT activity_id, customer_id, amount, occurred_at, refunded_activity_id "
    "FROM tier_replay_activity "
    "WHERE replay_id = :rid AND customer_id = ANY(CAST(:ids AS text[]))"
)

_SAVE_TIERS = sa.text(
    "UPDATE tier_replay_customers AS r SET tier = v.tier, since = v.since, "
    "review_at = v.review_at, stale = false "
    "FROM unnest(CAST(:ids AS text[]), CAST(:tiers AS text[]), "
    "CAST(:sinces AS timestamptz[]), CAST(:reviews AS timestamptz[])) "
    "AS v(customer_id, tier, since, review_at) "
    "WHERE r.replay_id = :rid AND r.customer_id = v.customer_id"
)

_NOTHING_TO_REBUILD = sa.text(
    "UPDATE tier_replay_customers SET stale = false "
    "WHERE replay_id = :rid AND customer_id = ANY(CAST(:ids AS text[]))"
)

# An override in force: the customer's review is the one a staff member's change set.
_DIFFERING = sa.text(
    "SELECT r.customer_id, r.tier, r.since, r.review_at, "
    "COALESCE(c.enrolled_at, r.enrolled_at) AS enrolled_at, c.tier AS old_tier "
    "FROM tier_replay_customers AS r "
    "LEFT JOIN customers AS c ON c.customer_id = r.customer_id "
    "WHERE r.replay_id = :rid AND r.tier IS NOT NULL "
    "AND (c.customer_id IS NULL OR c.tier <> r.tier OR c.since <> r.since "
    "OR c.review_at <> r.review_at) "
    "AND (c.review_at > :at AND EXISTS (SELECT 1 FROM tier_history AS h "
    "WHERE h.customer_id = c.customer_id AND h.actor IS NOT NULL "
    "AND h.review_at = c.review_at)) IS NOT TRUE "
    "ORDER BY r.customer_id"
)

# Activity the live consumer has not applied yet: it finds it recorded and counts it once.
_COPY_ACTIVITY = sa.text(
    "INSERT INTO qualifying_activity "
    "(activity_id, customer_id, amount, occurred_at, attributed_at) "
    "SELECT a.activity_id, a.customer_id, a.amount, a.occurred_at, p.occurred_at "
    "FROM tier_replay_activity AS a "
    "LEFT JOIN tier_replay_activity AS p "
    "ON p.replay_id = a.replay_id AND p.activity_id = a.refunded_activity_id "
    "WHERE a.replay_id = :rid AND NOT EXISTS "
    "(SELECT 1 FROM qualifying_activity AS q WHERE q.activity_id = a.activity_id) "
    "ORDER BY a.occurred_at "
    "ON CONFLICT (activity_id) DO NOTHING"
)

_UPSERT_LIVE = sa.text(
    "INSERT INTO customers (customer_id, tier, since, review_at, enrolled_at) "
    "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:tiers AS text[]), "
    "CAST(:sinces AS timestamptz[]), CAST(:reviews AS timestamptz[]), "
    "CAST(:enrolled AS timestamptz[])) "
    "ON CONFLICT (customer_id) DO UPDATE SET tier = EXCLUDED.tier, since = EXCLUDED.since, "
    "review_at = EXCLUDED.review_at, "
    "enrolled_at = COALESCE(customers.enrolled_at, EXCLUDED.enrolled_at)"
)

_LOCK_LIVE = sa.text("LOCK TABLE customers, qualifying_activity IN EXCLUSIVE MODE")

_WORKING_TABLES = ("tier_replay_activity", "tier_replay_customers", "tier_replay_offsets")


# -- the command -------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayResult:
    replay_id: str
    switched: bool  # False: stopped before the switch (run again to resume)
    events: int
    changed: int  # customers whose tier the switch changed (and announced)


@dataclass
class Replay:
    engine: AsyncEngine
    bootstrap_servers: str
    program: Program
    clock: Clock
    report: Callable[[str], None] = print
    batch_max_records: int = 1000
    chunk_size: int = 500
    # A load pass that found fewer new records than this is close enough to switch: the
    # switch loads the rest with the live tables locked.
    switch_below: int = 1000
    progress_every_seconds: float = 2.0

    async def run(
        self, *, fresh: bool = False, stop_after_polls: int | None = None
    ) -> ReplayResult:
        """Starts a replay of this program, or resumes the one of it left unfinished.
        `fresh` abandons an unfinished replay first (one of another program is otherwise
        refused). `stop_after_polls` stops after that many loaded polls without switching,
        as a crash would (for tests)."""
        async with self.engine.connect() as guard:
            locked = await guard.execute(sa.select(sa.func.pg_try_advisory_lock(_REPLAY_LOCK)))
            if not locked.scalar():
                raise ReplayRefused("another replay command is running")
            await guard.commit()
            try:
                return await self._run(fresh, stop_after_polls)
            finally:
                await guard.execute(sa.select(sa.func.pg_advisory_unlock(_REPLAY_LOCK)))
                await guard.commit()

    async def _run(self, fresh: bool, stop_after_polls: int | None) -> ReplayResult:
        replay_id = await self._begin(fresh)
        reader = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            client_id="fedelta-tiers-replay",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.batch_max_records,
        )
        await reader.start()
        try:
            partitions = await self._assign(reader, replay_id)
            polls = 0
            while True:
                ends = await reader.end_offsets(partitions)
                loaded, polls = await self._load_pass(
                    reader, replay_id, ends, polls, stop_after_polls
                )
                if stop_after_polls is not None and polls >= stop_after_polls:
                    self.report(f"replay {replay_id}: stopped before the switch; run it again")
                    return await self._result(replay_id, switched=False)
                await self._compute_all(replay_id)
                if loaded < self.switch_below:
                    break
            changed = await self._switch(reader, replay_id, partitions)
        finally:
            await reader.stop()
        await self._clean_up()
        self.report(f"replay {replay_id}: switched; {changed} customer(s) changed tier")
        return await self._result(replay_id, switched=True)

    async def _begin(self, fresh: bool) -> str:
        wanted = program_text(self.program)
        replays = tables.tier_replays
        async with self.engine.begin() as conn:
            running = (
                await conn.execute(sa.select(replays).where(replays.c.status == RUNNING))
            ).first()
            if running is not None and running.program == wanted and not fresh:
                self.report(
                    f"replay {running.replay_id}: resuming ({running.events} events loaded)"
                )
                return str(running.replay_id)
            if running is not None and not fresh:
                raise ReplayRefused(
                    f"replay {running.replay_id} of another program is unfinished: run it "
                    "again with that program to finish it, or pass --fresh to abandon it"
                )
            if running is not None:
                await conn.execute(
                    replays.update()
                    .where(replays.c.replay_id == running.replay_id)
                    .values(status=ABANDONED)
                )
                self.report(f"replay {running.replay_id}: abandoned")
            replay_id = f"{self.clock.now():%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
            await conn.execute(
                replays.insert().values(
                    replay_id=replay_id,
                    program=wanted,
                    status=RUNNING,
                    started_at=self.clock.now(),
                    events=0,
                    skipped=0,
                )
            )
        await self._clean_up()
        self.report(f"replay {replay_id}: started")
        return replay_id

    async def _clean_up(self) -> None:
        """Drops the working rows of replays that are over (switched or abandoned)."""
        async with self.engine.begin() as conn:
            for table in _WORKING_TABLES:
                await conn.execute(
                    sa.text(
                        f"DELETE FROM {table} WHERE replay_id IN "  # noqa: S608 - fixed names
                        "(SELECT replay_id FROM tier_replays WHERE status <> 'running')"
                    )
                )

    async def _assign(self, reader: AIOKafkaConsumer, replay_id: str) -> list[TopicPartition]:
        partitions: list[TopicPartition] = []
        for topic in REPLAYED_TOPICS:
            found = reader.partitions_for_topic(topic)
            if not found:
                await reader._client.force_metadata_update()
                found = reader.partitions_for_topic(topic)
            if not found:
                raise ReplayRefused(f"topic {topic} not found")
            partitions.extend(TopicPartition(topic, p) for p in sorted(found))
        reader.assign(partitions)
        async with self.engine.connect() as conn:
            stored = await ReplayStore(conn, replay_id).offsets()
        beginnings = await reader.beginning_offsets(partitions)
        for tp in partitions:
            if tp in stored:
                reader.seek(tp, stored[tp])
            else:
                reader.seek(tp, beginnings[tp])
            if tp.topic == topics.PURCHASES and beginnings[tp] > 0:
                self.report(
                    f"warning: {tp.topic}[{tp.partition}] begins at offset {beginnings[tp]}: "
                    "older purchases were deleted by retention and are not replayed"
                )
        return partitions

    async def _load_pass(
        self,
        reader: AIOKafkaConsumer,
        replay_id: str,
        ends: dict[TopicPartition, int],
        polls: int,
        stop_after_polls: int | None,
    ) -> tuple[int, int]:
        """Loads up to the end offsets, one transaction per poll; returns the records read
        and the polls made so far."""
        read, last_report, idle = 0, 0.0, 0
        while not await _caught_up(reader, ends):
            if stop_after_polls is not None and polls >= stop_after_polls:
                break
            polled = await reader.getmany(timeout_ms=1000, max_records=self.batch_max_records)
            messages = [m for records in polled.values() for m in records]
            idle = 0 if messages else idle + 1
            if idle >= _IDLE_POLLS:
                # Nothing left below the end offsets: the offsets in between hold no record.
                self.report(f"replay {replay_id}: no records before the end offsets; going on")
                break
            async with self.engine.begin() as conn:
                await self._save_poll(conn, reader, replay_id, messages)
            read += len(messages)
            polls += 1 if messages else 0
            if time.monotonic() - last_report >= self.progress_every_seconds:
                last_report = time.monotonic()
                await self._report_progress(reader, replay_id, ends)
        await self._report_progress(reader, replay_id, ends)
        return read, polls

    async def _save_poll(
        self, conn: AsyncConnection, reader: AIOKafkaConsumer, replay_id: str, messages: list[Any]
    ) -> None:
        positions = {tp: await reader.position(tp) for tp in reader.assignment()}
        await ReplayStore(conn, replay_id).save_batch(
            read_records(messages, self.program), positions
        )

    async def _report_progress(
        self, reader: AIOKafkaConsumer, replay_id: str, ends: dict[TopicPartition, int]
    ) -> None:
        parts = []
        for topic in REPLAYED_TOPICS:
            done = sum([await reader.position(tp) for tp in ends if tp.topic == topic])
            end = sum(offset for tp, offset in ends.items() if tp.topic == topic)
            parts.append(f"{topic} {done}/{end}")
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(tables.tier_replays.c.events, tables.tier_replays.c.skipped).where(
                        tables.tier_replays.c.replay_id == replay_id
                    )
                )
            ).one()
        self.report(
            f"replay {replay_id}: {row.events} events loaded ({row.skipped} skipped); "
            f"offsets {', '.join(parts)}"
        )

    async def _compute_all(self, replay_id: str) -> None:
        after, computed = "", 0
        while True:
            async with self.engine.begin() as conn:
                done, last = await self._compute_chunk(conn, replay_id, after)
            computed += done
            if last is None:
                break
            after = last
        if computed:
            self.report(f"replay {replay_id}: {computed} customer tier(s) rebuilt")

    async def _compute_chunk(
        self, conn: AsyncConnection, replay_id: str, after: str
    ) -> tuple[int, str | None]:
        store = ReplayStore(conn, replay_id)
        as_of = self.clock.now()
        due = await store.lock_to_compute(as_of, after=after, limit=self.chunk_size)
        if not due:
            return 0, None
        histories = await store.histories(list(due))
        rebuilt: list[CustomerTier] = []
        unknown: list[str] = []
        for customer_id, enrolled_at in due.items():
            activities, refunded = histories[customer_id]
            outcome = rebuild_customer(
                self.program,
                customer_id,
                enrolled_at=enrolled_at,
                activities=attribute_refunds(activities, refunded),
                refunds=refunded,
                as_of=as_of,
            )
            if outcome is None:
                unknown.append(customer_id)
            else:
                rebuilt.append(outcome.customer)
        await store.save_tiers(rebuilt, unknown)
        return len(due), max(due)

    async def _switch(
        self, reader: AIOKafkaConsumer, replay_id: str, partitions: list[TopicPartition]
    ) -> int:
        async with self.engine.begin() as conn:
            await conn.execute(_LOCK_LIVE)
            # Read under the lock: everything the live consumer has applied lies below.
            ends = await reader.end_offsets(partitions)
            idle = 0
            while idle < _IDLE_POLLS and not await _caught_up(reader, ends):
                polled = await reader.getmany(timeout_ms=1000, max_records=self.batch_max_records)
                messages = [m for records in polled.values() for m in records]
                idle = 0 if messages else idle + 1
                await self._save_poll(conn, reader, replay_id, messages)
            after = ""
            while True:
                _, last = await self._compute_chunk(conn, replay_id, after)
                if last is None:
                    break
                after = last
            store = ReplayStore(conn, replay_id)
            now = self.clock.now()
            differing = await store.differing(now)
            changes: list[TierChange] = []
            for rebuilt, old_tier in differing:
                change = switch_change(
                    self.program, old_tier or self.program.entry_tier.name, rebuilt, now
                )
                if change is not None:
                    changes.append(change)
            await store.make_live([rebuilt for rebuilt, _ in differing])
            await SqlTierRepository(conn).append_history(changes)
            sink = CollectingSink()
            for change in changes:
                await announce_replay_change(change, replay_id, sink, now)
            await Outbox(conn, tables.outbox, self.clock).add_all(sink.events)
            replays = tables.tier_replays
            await conn.execute(
                replays.update()
                .where(replays.c.replay_id == replay_id)
                .values(
                    status=SWITCHED,
                    switched_at=now,
                    changed=len(changes),
                    # Every tiers instance follows the newest generation's program from the
                    # moment this commits (services/tiers/adapters/programs.py).
                    generation=sa.func.nextval("tier_program_generation"),
                )
            )
        return len(changes)

    async def _result(self, replay_id: str, *, switched: bool) -> ReplayResult:
        replays = tables.tier_replays
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(sa.select(replays).where(replays.c.replay_id == replay_id))
            ).one()
        return ReplayResult(replay_id, switched, row.events, row.changed or 0)


async def _caught_up(reader: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await reader.position(tp) < end:
            return False
    return True
