"""The SQL the consumer, the `segments` job and the reads share: a set of members' facts as of an
instant (a few statements for the whole set, never one per member), the breakpoints, the custom
segments, and segment membership."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.insights.adapters import tables
from services.insights.domain.model import (
    Breakpoints,
    Feedback,
    MemberFacts,
    PointsUse,
    Purchase,
)
from services.insights.domain.segments import Change, Criteria, CustomSegment

_PURCHASES = sa.text(
    "SELECT p.customer_id, p.purchase_key, p.occurred_at, p.partner_id, p.store_id, p.total,"
    " COALESCE((SELECT sum(r.amount) FROM refunds r WHERE r.purchase_key = p.purchase_key"
    " AND r.occurred_at <= :as_of), 0) AS refunded,"
    " EXISTS (SELECT 1 FROM campaign_purchases c WHERE c.customer_id = p.customer_id"
    " AND c.purchase_id = p.purchase_id) AS in_campaign"
    " FROM purchases p WHERE p.customer_id = ANY(:ids) AND p.occurred_at <= :as_of"
)
_POINTS = sa.text(
    "SELECT customer_id,"
    " COALESCE(sum(points) FILTER (WHERE kind IN ('earned', 'imported')), 0) AS earned,"
    " COALESCE(-sum(points) FILTER (WHERE kind = 'redeemed'), 0) AS redeemed,"
    " count(*) FILTER (WHERE kind = 'redeemed') AS redemptions"
    " FROM points_movements WHERE customer_id = ANY(:ids)"
    " AND occurred_at > :start AND occurred_at <= :as_of GROUP BY customer_id"
)
_PERKS = sa.text(
    "SELECT customer_id, count(*) AS used FROM perks WHERE customer_id = ANY(:ids)"
    " AND used_at > :start AND used_at <= :as_of"
    " AND NOT EXISTS (SELECT 1 FROM perk_revocations r WHERE r.perk_key = perks.perk_key"
    " AND r.revoked_at <= :as_of) GROUP BY customer_id"
)
_REFERRALS = sa.text(
    "SELECT referred_by, count(*) AS referred FROM members WHERE referred_by = ANY(:ids)"
    " AND enrolled_at <= :as_of GROUP BY referred_by"
)
_FEEDBACK = sa.text(
    "SELECT customer_id, given_at, kind, score FROM feedback WHERE customer_id = ANY(:ids)"
    " AND given_at > :start AND given_at <= :as_of"
)
_TIERS = sa.text(
    "SELECT DISTINCT ON (customer_id) customer_id, tier FROM tier_history"
    " WHERE customer_id = ANY(:ids) AND effective_at <= :as_of"
    " ORDER BY customer_id, effective_at DESC"
)
_MEMBERS = sa.text("SELECT customer_id, enrolled_at FROM members WHERE customer_id = ANY(:ids)")


class SqlFacts:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def _rows(self, statement: sa.TextClause, **params: Any) -> Sequence[sa.Row[Any]]:
        return (await self._conn.execute(statement, params)).all()

    async def facts_of(
        self, customer_ids: Sequence[str], as_of: datetime, window: timedelta
    ) -> dict[str, MemberFacts]:
        ids = list(customer_ids)
        span = {"ids": ids, "as_of": as_of, "start": as_of - window}
        members = await self._rows(_MEMBERS, ids=ids)
        purchases: dict[str, list[Purchase]] = defaultdict(list)
        for row in await self._rows(_PURCHASES, ids=ids, as_of=as_of):
            purchases[row.customer_id].append(_purchase(row))
        points = {
            row.customer_id: PointsUse(int(row.earned), int(row.redeemed), int(row.redemptions))
            for row in await self._rows(_POINTS, **span)
        }
        perks = {row.customer_id: int(row.used) for row in await self._rows(_PERKS, **span)}
        referrals = {
            row.referred_by: int(row.referred)
            for row in await self._rows(_REFERRALS, ids=ids, as_of=as_of)
        }
        feedback: dict[str, list[Feedback]] = defaultdict(list)
        for row in await self._rows(_FEEDBACK, **span):
            feedback[row.customer_id].append(Feedback(row.given_at, row.kind, row.score))
        tiers = {
            row.customer_id: row.tier for row in await self._rows(_TIERS, ids=ids, as_of=as_of)
        }
        return {
            row.customer_id: MemberFacts(
                customer_id=row.customer_id,
                enrolled_at=row.enrolled_at,
                tier=tiers.get(row.customer_id),
                purchases=tuple(purchases[row.customer_id]),
                points=points.get(row.customer_id, PointsUse()),
                perks=perks.get(row.customer_id, 0),
                referrals=referrals.get(row.customer_id, 0),
                feedback=tuple(feedback[row.customer_id]),
            )
            for row in members
        }

    async def breakpoints(self) -> Breakpoints | None:
        row = (await self._conn.execute(sa.select(tables.rfm_breakpoints).where(_THE_ROW))).first()
        if row is None:
            return None
        return Breakpoints(
            recency_days=tuple(row.recency_days),
            frequency=tuple(row.frequency),
            monetary=tuple(row.monetary),
            as_of=row.as_of,
            members=row.members,
        )

    async def custom_segments(self) -> list[CustomSegment]:
        rows = await self._conn.execute(
            sa.select(tables.segment_definitions).order_by(tables.segment_definitions.c.name)
        )
        return [segment_of(row) for row in rows]

    async def lock_members(self, customer_ids: Sequence[str]) -> None:
        if not customer_ids:
            return
        ids = sorted(set(customer_ids))
        await self._conn.execute(
            sa.text(
                "INSERT INTO members (customer_id) SELECT unnest(CAST(:ids AS text[]))"
                " ON CONFLICT DO NOTHING"
            ),
            {"ids": ids},
        )
        await self._conn.execute(
            sa.text(
                "SELECT customer_id FROM members WHERE customer_id = ANY(:ids)"
                " ORDER BY customer_id FOR UPDATE"
            ),
            {"ids": ids},
        )

    async def segments_of(self, customer_ids: Collection[str]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = defaultdict(set)
        rows = await self._conn.execute(
            sa.select(tables.segment_members.c.customer_id, tables.segment_members.c.segment).where(
                tables.segment_members.c.customer_id.in_(list(customer_ids))
            )
        )
        for customer_id, segment in rows:
            found[customer_id].add(segment)
        return found

    async def apply_changes(self, changes: Sequence[Change], at: datetime) -> None:
        entered = [
            {
                "segment": c.segment,
                "customer_id": c.customer_id,
                "since": at,
                "reasons": list(c.reasons),
            }
            for c in changes
            if c.entered
        ]
        left = [c for c in changes if not c.entered]
        if entered:
            await self._conn.execute(
                insert(tables.segment_members).on_conflict_do_nothing(), entered
            )
        if left:
            await self._conn.execute(
                sa.text(
                    "DELETE FROM segment_members WHERE (segment, customer_id) IN"
                    " (SELECT unnest(CAST(:segments AS text[])), unnest(CAST(:ids AS text[])))"
                ),
                {"segments": [c.segment for c in left], "ids": [c.customer_id for c in left]},
            )


_THE_ROW = tables.rfm_breakpoints.c.id == 1


def _purchase(row: sa.Row[Any]) -> Purchase:
    return Purchase(
        key=row.purchase_key,
        occurred_at=row.occurred_at,
        partner_id=row.partner_id,
        store_id=row.store_id,
        total=row.total,
        refunded=Decimal(row.refunded),
        in_campaign=row.in_campaign,
    )


def criteria_of(document: dict[str, Any]) -> Criteria:
    values = dict(document)
    for name in ("lifecycle", "loyalty_types", "tiers"):
        values[name] = tuple(values.get(name) or ())
    if values.get("min_monetary") is not None:
        values["min_monetary"] = Decimal(str(values["min_monetary"]))
    return Criteria(**values)


def segment_of(row: sa.Row[Any]) -> CustomSegment:
    return CustomSegment(
        name=row.name, description=row.description, criteria=criteria_of(row.criteria)
    )
