"""Quiescence, then the comparison of what the services hold with the model of the answers.

Read straight from the services' databases, their HTTP APIs, the broker and the mail
catcher's files: nothing here trusts a service's own account of what it did."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from chaos.traffic import CustomerModel
from shared.messaging import topics
from shared.messaging.events import CloudEvent
from shared.messaging.kafka import KafkaConnection, client_options

# What each consuming service subscribes to (its bootstrap's CONSUMES).
CONSUMED: Mapping[str, tuple[str, ...]] = {
    "points": (
        topics.CUSTOMERS,
        topics.PURCHASES,
        topics.TIERS,
        topics.ENGAGEMENT,
        topics.SEGMENTS,
    ),
    "tiers": (topics.CUSTOMERS, topics.PURCHASES),
    "notifications": (
        topics.CUSTOMERS,
        topics.TIERS,
        topics.POINTS,
        topics.PURCHASES,
        topics.ENGAGEMENT,
    ),
    "engagement": (
        topics.CUSTOMERS,
        topics.PURCHASES,
        topics.TIERS,
        topics.FEEDBACK,
        topics.SEGMENTS,
    ),
    "insights": (
        topics.CUSTOMERS,
        topics.PURCHASES,
        topics.POINTS,
        topics.TIERS,
        topics.ENGAGEMENT,
        topics.FEEDBACK,
    ),
}
SERVICES_WITH_OUTBOX = ("ingest", "points", "tiers", "notifications", "engagement", "insights")
# The ledger entries of engagement's grants and their revocations (services/points/domain/
# engagement.py): checked against engagement's completions by `_check_engagement`.
GRANT_ENTRY, REVOCATION_ENTRY = "engagement:", "engagement-revoked:"


@dataclass(frozen=True)
class ChaosCard:
    """The stamp card chaos makes before its traffic: a stamp per purchase, every purchase of
    the run qualifies, `points` a full card."""

    card_id: str
    stamps_required: int
    points: int


@dataclass
class Granted:
    """What engagement and points hold of one customer's card."""

    stamps: int = 0
    completed: int = 0
    grants: set[str] = field(default_factory=set)  # every completion's grant
    revoked: set[str] = field(default_factory=set)
    credited: set[str] = field(default_factory=set)  # points' grant entries, by grant
    taken_back: set[str] = field(default_factory=set)  # points' revocation entries


@dataclass
class Findings:
    differences: list[str] = field(default_factory=list)
    lost: int = 0
    duplicated: int = 0
    events_per_topic: dict[str, int] = field(default_factory=dict)
    redelivered_records: int = 0
    mail_files: int = 0
    mail_duplicates: int = 0
    dead_letters: int = 0

    def differ(self, what: str, *, lost: bool = False, duplicated: bool = False) -> None:
        self.differences.append(what)
        self.lost += int(lost)
        self.duplicated += int(duplicated)


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _connect(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, timeout=10)


async def _quiet_once(
    dsns: Mapping[str, str], bootstrap: str | KafkaConnection, run_prefix: str
) -> str | None:
    """None when everything is drained, else what still is not."""
    for service in SERVICES_WITH_OUTBOX:
        conn = await _connect(dsns[service])
        try:
            waiting = await conn.fetchval("SELECT count(*) FROM outbox")
            if service == "notifications":
                scheduled = await conn.fetchval(
                    "SELECT count(*) FROM deliveries WHERE status = 'scheduled'"
                    " AND customer_id LIKE $1",
                    f"{run_prefix}%",
                )
                if scheduled:
                    return f"notifications: {scheduled} deliveries still scheduled"
        finally:
            await conn.close()
        if waiting:
            return f"{service}: {waiting} events in the outbox"
    lags = await consumer_lags(bootstrap)
    behind = {group: lag for group, lag in lags.items() if lag}
    if behind:
        return f"consumer lag {behind}"
    return None


async def wait_for_quiescence(
    dsns: Mapping[str, str], bootstrap: str | KafkaConnection, run_prefix: str, *, within: float
) -> float:
    """Seconds until the outboxes are empty, every group's lag is 0 and no delivery is still
    scheduled, twice in a row (a relay may publish between two looks)."""
    started = time.monotonic()
    deadline = started + within
    quiet_in_a_row = 0
    last = "nothing checked yet"
    while quiet_in_a_row < 2:
        try:
            state = await _quiet_once(dsns, bootstrap, run_prefix)
        except (TimeoutError, OSError, asyncpg.PostgresError) as error:
            state = f"{type(error).__name__} while looking"
        quiet_in_a_row = quiet_in_a_row + 1 if state is None else 0
        last = state or last
        if time.monotonic() > deadline:
            raise TimeoutError(f"no quiescence within {within:.0f} s: {last}")
        await asyncio.sleep(1.0)  # the poll interval of a deadline-bounded wait
    return time.monotonic() - started


async def consumer_lags(bootstrap: str | KafkaConnection) -> dict[str, int]:
    admin = AIOKafkaAdminClient(**client_options(bootstrap), request_timeout_ms=10000)
    consumer = AIOKafkaConsumer(**client_options(bootstrap), enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        lags = {}
        for service, consumed in CONSUMED.items():
            committed = await admin.list_consumer_group_offsets(f"fedelta-{service}")
            partitions = [
                TopicPartition(topic, p)
                for topic in consumed
                for p in (
                    consumer.partitions_for_topic(topic) or await _partitions(consumer, topic)
                )
            ]
            ends = await consumer.end_offsets(partitions)
            lag = 0
            for partition, end in ends.items():
                done = committed.get(partition)
                lag += end - (done.offset if done is not None and done.offset >= 0 else 0)
            lags[service] = lag
        return lags
    finally:
        await consumer.stop()
        await admin.close()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    known: set[int] | None = consumer.partitions_for_topic(topic)
    if known:
        return known
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


async def read_topic(bootstrap: str | KafkaConnection, topic: str) -> list[Any]:
    consumer = AIOKafkaConsumer(**client_options(bootstrap), enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in await _partitions(consumer, topic)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        deadline = time.monotonic() + 120
        while not await _at_end(consumer, ends):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end within 120 s")
            for batch in (await consumer.getmany(timeout_ms=1000, max_records=5000)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def _at_end(consumer: AIOKafkaConsumer, ends: Mapping[TopicPartition, int]) -> bool:
    for partition, end in ends.items():
        if await consumer.position(partition) < end:
            return False
    return True


async def topic_sizes(bootstrap: str | KafkaConnection, names: Iterable[str]) -> dict[str, int]:
    consumer = AIOKafkaConsumer(**client_options(bootstrap), enable_auto_commit=False)
    await consumer.start()
    try:
        sizes = {}
        for name in names:
            partitions = [TopicPartition(name, p) for p in await _partitions(consumer, name)]
            starts = await consumer.beginning_offsets(partitions)
            ends = await consumer.end_offsets(partitions)
            sizes[name] = sum(ends[p] - starts[p] for p in partitions)
        return sizes
    finally:
        await consumer.stop()


async def dead_letters(bootstrap: str | KafkaConnection, names: Iterable[str]) -> int:
    """The records with a value on the dead-letter topics: a tombstone is no dead letter (an
    erasure's, or the one ingest appends to each partition so that compaction runs on quiet
    ones: docs/operations.md, *Erasure on Kafka*)."""
    counts = [await read_topic(bootstrap, name) for name in names]
    return sum(1 for records in counts for record in records if record.value is not None)


async def verify(
    customers: Sequence[CustomerModel],
    *,
    dsns: Mapping[str, str],
    bootstrap: str | KafkaConnection,
    points_url: str,
    tiers_url: str,
    points_read_token: str,
    tiers_read_token: str,
    mail_dir: Path,
    card: ChaosCard,
) -> Findings:
    found = Findings()
    enrolled = [c for c in customers if c.enrolled]
    by_id = {c.customer_id: c for c in enrolled}
    ids = list(by_id)
    for c in customers:
        if c.unknown:
            found.differ(f"{c.customer_id}: {c.unknown} call(s) without a definite answer")
    granted = await _check_engagement(found, by_id, ids, dsns, card)
    await _check_points(found, by_id, ids, dsns["points"], points_url, points_read_token, granted)
    await _check_tiers(found, by_id, ids, dsns["tiers"], tiers_url, tiers_read_token)
    await _check_notifications(found, by_id, ids, dsns["notifications"], mail_dir)
    await _check_insights(found, by_id, ids, dsns["insights"])
    await _check_topics(found, customers, bootstrap)
    return found


@dataclass
class PointsRows:
    """What points' database holds of the run's customers."""

    entries: dict[str, list[Any]]
    coupons: dict[str, dict[str, str]]  # customer -> coupon id -> status
    linked: set[str]  # purchases linked to the redemption that paid part of them


async def _points_rows(dsn: str, ids: list[str]) -> PointsRows:
    conn = await _connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT customer_id, entry_id, kind, points FROM ledger_entries"
            " WHERE customer_id = ANY($1::text[])",
            ids,
        )
        coupon_rows = await conn.fetch(
            "SELECT customer_id, coupon_id, status FROM coupons"
            " WHERE customer_id = ANY($1::text[])",
            ids,
        )
        linked = await conn.fetch(
            "SELECT purchase_id FROM purchases"
            " WHERE customer_id = ANY($1::text[]) AND redemption_id IS NOT NULL",
            ids,
        )
    finally:
        await conn.close()
    found = PointsRows(defaultdict(list), defaultdict(dict), {r["purchase_id"] for r in linked})
    for row in rows:
        found.entries[row["customer_id"]].append(row)
    for row in coupon_rows:
        found.coupons[row["customer_id"]][row["coupon_id"]] = row["status"]
    return found


async def _check_points(
    found: Findings,
    by_id: Mapping[str, CustomerModel],
    ids: list[str],
    dsn: str,
    url: str,
    token: str,
    granted: Mapping[str, int],
) -> None:
    """`granted`: the points engagement's standing grants give each customer beyond the
    model's (checked by `_check_engagement`), and what all its grants ever gave."""
    rows = await _points_rows(dsn, ids)
    for customer_id, model in by_id.items():
        _check_ledger(found, model, rows.entries[customer_id])
        _check_tender_and_coupons(found, model, rows)
    await _check_balances(found, by_id, url, token, granted)


def _check_ledger(found: Findings, model: CustomerModel, mine: list[Any]) -> None:
    customer_id = model.customer_id
    engagement = (GRANT_ENTRY, REVOCATION_ENTRY)
    kinds = Counter(row["kind"] for row in mine if not row["entry_id"].startswith(engagement))
    by_entry = {row["entry_id"]: row for row in mine}
    expected = {
        "bonus": 1,
        "earn": len(model.purchases),
        "reverse": len(model.refunds),
        "redeem": len(model.redemptions),
        "hold": len(model.holds),
        "release": sum(1 for h in model.holds if h.settled == "void")
        + sum(1 for points in model.tender_returns() if points > 0),
    }
    for kind, count in expected.items():
        if kinds[kind] != count:
            found.differ(
                f"points {customer_id}: {kinds[kind]} {kind} entries, {count} expected",
                lost=kinds[kind] < count,
                duplicated=kinds[kind] > count,
            )
    for purchase_id, total in model.purchases.items():
        row = by_entry.get(f"purchase:demo:{purchase_id}")
        if row is None or row["points"] != total:
            found.differ(
                f"points {customer_id}: purchase {purchase_id} earned"
                f" {row and row['points']}, {total} expected",
                lost=row is None,
            )
    for refund_id, (_, amount) in model.refunds.items():
        row = by_entry.get(f"refund:demo:{refund_id}")
        if row is None or abs(row["points"]) != amount:
            found.differ(
                f"points {customer_id}: refund {refund_id} reversed"
                f" {row and row['points']}, {amount} expected",
                lost=row is None,
            )
    for purchase_id in model.refused_purchases:
        if f"purchase:demo:{purchase_id}" in by_entry:
            found.differ(f"points {customer_id}: refused purchase {purchase_id} earned points")
    for refund_id in model.refused_refunds:
        if f"refund:demo:{refund_id}" in by_entry:
            found.differ(f"points {customer_id}: refused refund {refund_id} reversed points")


def _check_tender_and_coupons(found: Findings, model: CustomerModel, rows: PointsRows) -> None:
    customer_id = model.customer_id
    for purchase_id in model.tender:
        if purchase_id not in rows.linked:
            found.differ(
                f"points {customer_id}: purchase {purchase_id} paid with points is not"
                " linked to its redemption",
                lost=True,
            )
    statuses = rows.coupons.get(customer_id, {})
    if statuses != model.coupons:
        found.differ(
            f"points {customer_id}: coupons {statuses}, {model.coupons} expected",
            lost=len(statuses) < len(model.coupons),
            duplicated=len(statuses) > len(model.coupons),
        )


async def _check_balances(
    found: Findings,
    by_id: Mapping[str, CustomerModel],
    url: str,
    token: str,
    granted: Mapping[str, int],
) -> None:
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
        for customer_id, model in by_id.items():
            response = await http.get(f"{url}/v1/customers/{customer_id}/balance")
            if response.status_code != 200:
                found.differ(
                    f"points {customer_id}: balance answered {response.status_code}", lost=True
                )
                continue
            body = response.json()
            net = body["available"] - body["debt"]
            standing, ever = granted.get(f"{customer_id}/standing", 0), granted.get(customer_id, 0)
            expected = (model.net_points + standing, model.lifetime_earned + ever, 0)
            if (net, body["lifetime_earned"], body["pending"]) != expected:
                found.differ(
                    f"points {customer_id}: available-debt {net},"
                    f" lifetime {body['lifetime_earned']},"
                    f" pending {body['pending']}; expected {expected}"
                )


async def _check_engagement(
    found: Findings,
    by_id: Mapping[str, CustomerModel],
    ids: list[str],
    dsns: Mapping[str, str],
    card: ChaosCard,
) -> dict[str, int]:
    """A stamp a purchase, taken back by any refund of it: the card holds the purchases not
    refunded (T) as T // required completed and T % required stamps; every completion
    engagement made is credited by points exactly once, and every one it took back is taken
    back once. Returns the points the grants give each customer (`<id>/standing`: those not
    taken back; `<id>`: all ever given, which lifetime_earned counts)."""
    held = await _engagement_rows(dsns, ids, card)
    points: dict[str, int] = {}
    for customer_id, model in by_id.items():
        mine = held.get(customer_id, Granted())
        kept = sum(1 for p in model.purchases if not model.refunded(p))
        wanted = (kept % card.stamps_required, kept // card.stamps_required)
        if (mine.stamps, mine.completed) != wanted:
            found.differ(
                f"engagement {customer_id}: card at {mine.stamps} stamps,"
                f" {mine.completed} completed; {wanted} expected ({kept} purchases kept)"
            )
        if len(mine.grants) - len(mine.revoked) != mine.completed:
            found.differ(
                f"engagement {customer_id}: {len(mine.grants)} grants, {len(mine.revoked)}"
                f" revoked, for {mine.completed} completed cards"
            )
        for what, ours, theirs in (
            ("credited", mine.grants, mine.credited),
            ("taken back", mine.revoked, mine.taken_back),
        ):
            if ours != theirs:
                found.differ(
                    f"points {customer_id}: grants {what} {sorted(theirs)},"
                    f" engagement's {sorted(ours)}",
                    lost=bool(ours - theirs),
                    duplicated=bool(theirs - ours),
                )
        points[customer_id] = card.points * len(mine.credited)
        points[f"{customer_id}/standing"] = card.points * len(mine.credited - mine.taken_back)
    return points


async def _engagement_rows(
    dsns: Mapping[str, str], ids: list[str], card: ChaosCard
) -> dict[str, Granted]:
    held: dict[str, Granted] = defaultdict(Granted)
    conn = await _connect(dsns["engagement"])
    try:
        for row in await conn.fetch(
            "SELECT customer_id, stamps, completed_count FROM stamp_cards"
            " WHERE card_id = $1 AND customer_id = ANY($2::text[])",
            card.card_id,
            ids,
        ):
            held[row["customer_id"]].stamps = row["stamps"]
            held[row["customer_id"]].completed = row["completed_count"]
        for row in await conn.fetch(
            "SELECT customer_id, grant_id, revoked_at FROM stamp_completions"
            " WHERE card_id = $1 AND customer_id = ANY($2::text[])",
            card.card_id,
            ids,
        ):
            held[row["customer_id"]].grants.add(row["grant_id"])
            if row["revoked_at"] is not None:
                held[row["customer_id"]].revoked.add(row["grant_id"])
    finally:
        await conn.close()
    conn = await _connect(dsns["points"])
    try:
        for row in await conn.fetch(
            "SELECT customer_id, entry_id FROM ledger_entries"
            " WHERE customer_id = ANY($1::text[]) AND entry_id LIKE 'engagement%'",
            ids,
        ):
            entry_id: str = row["entry_id"]
            mine = held[row["customer_id"]]
            if entry_id.startswith(REVOCATION_ENTRY):
                mine.taken_back.add(entry_id.removeprefix(REVOCATION_ENTRY))
            elif entry_id.startswith(GRANT_ENTRY):
                mine.credited.add(entry_id.removeprefix(GRANT_ENTRY))
    finally:
        await conn.close()
    return held


async def _check_tiers(
    found: Findings,
    by_id: Mapping[str, CustomerModel],
    ids: list[str],
    dsn: str,
    url: str,
    token: str,
) -> None:
    conn = await _connect(dsn)
    try:
        activity = await conn.fetch(
            "SELECT customer_id, count(*) AS n FROM qualifying_activity"
            " WHERE customer_id = ANY($1::text[]) GROUP BY customer_id",
            ids,
        )
    finally:
        await conn.close()
    activity_count = {row["customer_id"]: row["n"] for row in activity}
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {token}"}) as http:
        for customer_id, model in by_id.items():
            expected_rows = len(model.purchases) + len(model.refunds)
            if activity_count.get(customer_id, 0) != expected_rows:
                got = activity_count.get(customer_id, 0)
                found.differ(
                    f"tiers {customer_id}: {got} qualifying activities, {expected_rows} expected",
                    lost=got < expected_rows,
                    duplicated=got > expected_rows,
                )
            response = await http.get(f"{url}/v1/customers/{customer_id}/tier")
            if response.status_code != 200:
                found.differ(
                    f"tiers {customer_id}: tier answered {response.status_code}", lost=True
                )
                continue
            body = response.json()
            spend = float(body["qualifying_spend"])
            if spend != model.spend or body["tier"] != "bronze":
                found.differ(
                    f"tiers {customer_id}: {body['tier']} with spend {spend},"
                    f" bronze with {model.spend} expected"
                )


async def _check_insights(
    found: Findings, by_id: Mapping[str, CustomerModel], ids: list[str], dsn: str
) -> None:
    """Insights keeps each accepted purchase and refund once, and the amounts add up to the
    customer's spend (its features are computed from these facts)."""
    conn = await _connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT m.customer_id,"
            " (SELECT count(*) FROM purchases p WHERE p.customer_id = m.customer_id) AS bought,"
            " (SELECT COALESCE(sum(total), 0) FROM purchases p"
            " WHERE p.customer_id = m.customer_id) AS total,"
            " (SELECT count(*) FROM refunds r WHERE r.customer_id = m.customer_id) AS refunds,"
            " (SELECT COALESCE(sum(amount), 0) FROM refunds r"
            " WHERE r.customer_id = m.customer_id) AS refunded"
            " FROM members m WHERE m.customer_id = ANY($1::text[])",
            ids,
        )
    finally:
        await conn.close()
    held = {row["customer_id"]: row for row in rows}
    for customer_id, model in by_id.items():
        row = held.get(customer_id)
        got = (0, 0) if row is None else (row["bought"], row["refunds"])
        expected = (len(model.purchases), len(model.refunds))
        if got != expected:
            found.differ(
                f"insights {customer_id}: {got[0]} purchases and {got[1]} refunds kept,"
                f" {expected} expected",
                lost=got < expected,
                duplicated=got > expected,
            )
        elif row is not None and float(row["total"] - row["refunded"]) != model.spend:
            found.differ(f"insights {customer_id}: spend {row['total'] - row['refunded']}")


async def _check_notifications(
    found: Findings,
    by_id: Mapping[str, CustomerModel],
    ids: list[str],
    dsn: str,
    mail_dir: Path,
) -> None:
    conn = await _connect(dsn)
    try:
        deliveries = await conn.fetch(
            "SELECT notification_id, customer_id, template, status, cause_event_id, channel"
            " FROM deliveries WHERE customer_id = ANY($1::text[])",
            ids,
        )
        contacts = await conn.fetch(
            "SELECT customer_id, email FROM contacts WHERE customer_id = ANY($1::text[])", ids
        )
    finally:
        await conn.close()
    welcomes: dict[str, list[Any]] = defaultdict(list)
    per_trigger = Counter(
        (row["cause_event_id"], row["template"], row["channel"]) for row in deliveries
    )
    for (cause, template, channel), count in per_trigger.items():
        if count > 1:
            found.differ(
                f"notifications: {count} deliveries of {template}/{channel} for {cause}",
                duplicated=True,
            )
    for row in deliveries:
        if row["template"] == "welcome":
            welcomes[row["customer_id"]].append(row)
        if row["status"] == "failed":
            found.differ(f"notifications {row['customer_id']}: {row['template']} failed")
    email_of = {row["customer_id"]: row["email"] for row in contacts}
    for customer_id, model in by_id.items():
        mine = welcomes[customer_id]
        if len(mine) != 1:
            found.differ(
                f"notifications {customer_id}: {len(mine)} welcome deliveries, 1 expected",
                lost=not mine,
                duplicated=len(mine) > 1,
            )
        elif model.consent_email and mine[0]["status"] != "sent":
            found.differ(f"notifications {customer_id}: consented welcome {mine[0]['status']}")
        elif not model.consent_email and mine[0]["status"] == "sent":
            found.differ(f"notifications {customer_id}: welcome sent without consent")
        if email_of.get(customer_id) != model.email:
            found.differ(
                f"notifications {customer_id}: contact {email_of.get(customer_id)!r},"
                f" latest profile {model.email!r}"
            )
    sent = {row["notification_id"] for row in deliveries if row["status"] == "sent"}
    ours = {row["notification_id"] for row in deliveries}
    files = await asyncio.to_thread(_mail_files_by_message_id, mail_dir, ours)
    found.mail_files = sum(files.values())
    found.mail_duplicates = sum(n - 1 for n in files.values() if n > 1)
    for notification_id in sent - set(files):
        found.differ(f"notifications: {notification_id} logged as sent, no mail file", lost=True)


def _mail_files_by_message_id(mail_dir: Path, ours: set[str]) -> Counter[str]:
    """How many caught .eml files carry each of our notification ids as their Message-ID."""
    files: Counter[str] = Counter()
    for path in mail_dir.glob("*.eml"):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        message_id = str(message["Message-ID"] or "").strip("<>").split("@")[0]
        if message_id in ours:
            files[message_id] += 1
    return files


async def _check_topics(
    found: Findings, customers: Sequence[CustomerModel], bootstrap: str | KafkaConnection
) -> None:
    names = [spec.name for spec in topics.ALL_TOPICS]
    sizes = await topic_sizes(bootstrap, names)
    found.events_per_topic = {n: s for n, s in sizes.items() if not n.endswith(".dlq")}
    found.dead_letters = await dead_letters(
        bootstrap, [n for n, s in sizes.items() if n.endswith(".dlq") and s]
    )
    if found.dead_letters:
        found.differ(f"{found.dead_letters} records dead-lettered: {sizes}")
    refused = {p for c in customers for p in c.refused_purchases} | {
        r for c in customers for r in c.refused_refunds
    }
    first_seen: dict[str, list[str]] = defaultdict(list)
    seen: set[str] = set()
    for record in await read_topic(bootstrap, topics.PURCHASES):
        if record.value is None:
            continue
        event = CloudEvent.from_bytes(record.value)
        if event.id in seen:
            found.redelivered_records += 1
            continue
        seen.add(event.id)
        first_seen[event.subject or ""].append(event.id)
        data = event.data
        if data.get("refund_id") in refused:
            found.differ(f"refused refund {data['refund_id']} is on the purchases topic")
        if event.type.endswith("purchase.completed.v1") and data.get("purchase_id") in refused:
            found.differ(f"refused purchase {data['purchase_id']} is on the purchases topic")
    for c in customers:
        if first_seen.get(c.customer_id, []) != c.purchase_events:
            found.differ(
                f"purchases topic, {c.customer_id}: events out of order or missing"
                f" ({len(first_seen.get(c.customer_id, []))} on the topic,"
                f" {len(c.purchase_events)} accepted)",
                lost=len(first_seen.get(c.customer_id, [])) < len(c.purchase_events),
            )
