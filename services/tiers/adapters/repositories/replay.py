"""The replay's tables: `tier_replays` (which replay runs, its counts and outcome) and one
replay's working tables (`tier_replay_*`), on the caller's connection and transaction;
set-based."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tiers import ports
from services.tiers.adapters import tables
from services.tiers.adapters.repositories import common
from services.tiers.domain.model import CustomerTier, QualifyingActivity, TierChange
from services.tiers.ports import Partition, ReplayBatch

RUNNING, SWITCHED, ABANDONED = "running", "switched", "abandoned"


def replay_runs(conn: AsyncConnection) -> ports.ReplayRuns:
    return SqlReplayRuns(conn)


def replay_store(conn: AsyncConnection, replay_id: str) -> ports.ReplayStore:
    return SqlReplayStore(conn, replay_id)


class SqlReplayRuns:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def running(self) -> ports.RunningReplay | None:
        replays = tables.tier_replays
        row = (
            await self._conn.execute(sa.select(replays).where(replays.c.status == RUNNING))
        ).first()
        if row is None:
            return None
        return ports.RunningReplay(str(row.replay_id), row.program, row.events)

    async def abandon(self, replay_id: str) -> None:
        replays = tables.tier_replays
        await self._conn.execute(
            replays.update().where(replays.c.replay_id == replay_id).values(status=ABANDONED)
        )

    async def start(self, replay_id: str, program: str, at: datetime) -> None:
        await self._conn.execute(
            tables.tier_replays.insert().values(
                replay_id=replay_id,
                program=program,
                status=RUNNING,
                started_at=at,
                events=0,
                skipped=0,
            )
        )

    async def clean_up(self) -> None:
        for table in _WORKING_TABLES:
            await self._conn.execute(
                sa.text(
                    f"DELETE FROM {table} WHERE replay_id IN "  # noqa: S608 - fixed names
                    "(SELECT replay_id FROM tier_replays WHERE status <> 'running')"
                )
            )

    async def counts(self, replay_id: str) -> ports.ReplayCounts:
        replays = tables.tier_replays
        row = (
            await self._conn.execute(sa.select(replays).where(replays.c.replay_id == replay_id))
        ).one()
        return ports.ReplayCounts(row.events, row.skipped, row.changed or 0)

    async def mark_switched(self, replay_id: str, at: datetime, changed: int) -> None:
        replays = tables.tier_replays
        await self._conn.execute(
            replays.update()
            .where(replays.c.replay_id == replay_id)
            .values(
                status=SWITCHED,
                switched_at=at,
                changed=changed,
                # Every tiers instance follows the newest generation's program from the
                # moment this commits (services/tiers/programs.py).
                generation=sa.func.nextval("tier_program_generation"),
            )
        )


class SqlReplayStore:
    def __init__(self, conn: AsyncConnection, replay_id: str) -> None:
        self._conn = conn
        self._id = replay_id

    async def save_batch(self, batch: ReplayBatch, positions: Mapping[Partition, int]) -> None:
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
                    "tiers": [a.tier for a in listed],
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

    async def offsets(self) -> dict[Partition, int]:
        rows = await self._conn.execute(
            sa.select(tables.tier_replay_offsets).where(
                tables.tier_replay_offsets.c.replay_id == self._id
            )
        )
        return {Partition(row.topic, row.partition): row.next_offset for row in rows}

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
                    referrals=row.referrals,
                    tier=row.tier,
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

    async def lock_live(self) -> None:
        await self._conn.execute(_LOCK_LIVE)

    async def mark_referrers_stale(self) -> None:
        await self._conn.execute(_REFERRERS_STALE, {"rid": self._id})

    async def make_live(
        self, customers: Sequence[CustomerTier], changes: Sequence[TierChange]
    ) -> None:
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
        await common.append_history(self._conn, changes)


_SAVE_ACTIVITY = sa.text(
    "INSERT INTO tier_replay_activity "
    "(replay_id, activity_id, customer_id, amount, occurred_at, refunded_activity_id, tier) "
    "SELECT :rid, * FROM unnest(CAST(:ids AS text[]), CAST(:customers AS text[]), "
    "CAST(:amounts AS numeric[]), CAST(:occurred AS timestamptz[]), "
    "CAST(:refunded AS text[]), CAST(:tiers AS text[])) "
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

# With the referrals the live service qualified (its `qualify-referrals` job, from events):
# the topics say who referred whom, but when a referral qualified is tiers' own record. And
# with the imports the live service recorded that the topic no longer holds (retention).
_HISTORIES = sa.text(
    "SELECT activity_id, customer_id, amount, occurred_at, refunded_activity_id, "
    "0 AS referrals, tier FROM tier_replay_activity "
    "WHERE replay_id = :rid AND customer_id = ANY(CAST(:ids AS text[])) "
    "UNION ALL "
    "SELECT activity_id, customer_id, amount, occurred_at, NULL, referrals, NULL "
    "FROM qualifying_activity "
    "WHERE customer_id = ANY(CAST(:ids AS text[])) AND activity_id LIKE 'referral:%' "
    "UNION ALL "
    "SELECT q.activity_id, q.customer_id, q.amount, q.occurred_at, NULL, 0, q.tier "
    "FROM qualifying_activity AS q "
    "WHERE q.customer_id = ANY(CAST(:ids AS text[])) AND q.activity_id LIKE 'import:%' "
    "AND NOT EXISTS (SELECT 1 FROM tier_replay_activity AS t "
    "WHERE t.replay_id = :rid AND t.activity_id = q.activity_id)"
)

# Referrers whose referral qualified since the replay began: rebuilt again by the switch.
_REFERRERS_STALE = sa.text(
    "UPDATE tier_replay_customers SET stale = true "
    "WHERE replay_id = :rid AND NOT stale AND customer_id IN "
    "(SELECT referrer_id FROM referrals WHERE status = 'qualified' AND decided_at >= "
    "(SELECT started_at FROM tier_replays WHERE replay_id = :rid))"
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
# With its visit (`domain.rebuild.attribute_refunds`): +1 a purchase, -1 the refund that,
# in the order they occurred, refunds its purchase wholly; an import (its tier) is no visit.
_COPY_ACTIVITY = sa.text(
    "WITH new AS (INSERT INTO qualifying_activity "  # noqa: S608 - fixed fragments
    "(activity_id, customer_id, amount, occurred_at, attributed_at, visits, "
    "refunded_activity_id, tier) "
    "SELECT a.activity_id, a.customer_id, a.amount, a.occurred_at, p.occurred_at, "
    "CASE WHEN a.tier IS NOT NULL THEN 0 WHEN a.refunded_activity_id IS NULL THEN 1 "
    "WHEN p.amount IS NOT NULL AND a.refunded < p.amount + a.amount "
    "AND p.amount <= a.refunded THEN -1 ELSE 0 END, a.refunded_activity_id, a.tier "
    "FROM (SELECT *, -sum(amount) OVER (PARTITION BY refunded_activity_id "
    "ORDER BY occurred_at, activity_id) AS refunded "
    "FROM tier_replay_activity WHERE replay_id = :rid) AS a "
    "LEFT JOIN tier_replay_activity AS p "
    "ON p.replay_id = a.replay_id AND p.activity_id = a.refunded_activity_id "
    "WHERE NOT EXISTS "
    "(SELECT 1 FROM qualifying_activity AS q WHERE q.activity_id = a.activity_id) "
    "ORDER BY a.occurred_at "
    "ON CONFLICT (activity_id) DO NOTHING "
    "RETURNING activity_id, customer_id, occurred_at) " + common.NOTE_FIRST_PURCHASES
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
