"""The SQL the consumer, the `segments` job and the reads share: a set of members' facts as of an
instant (a few statements for the whole set, never one per member), the breakpoints, the custom
segments, and segment membership."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.insights.adapters import tables
from services.insights.domain.activity import variation
from services.insights.domain.model import (
    Activity,
    Breakpoints,
    Feedback,
    MemberFacts,
    PointsUse,
    Rules,
)
from services.insights.domain.segments import Change, Criteria, CustomSegment

# Per member, over the purchases made by :as_of and not wholly refunded by then: the last, the
# latest that ended a lapse (:lapse or more after the one before), and in the window (after
# :start) their number, net amount, the campaign-boosted ones, the gaps between them and the
# usual place (a store, else a partner; ties to the greatest name). domain/activity.py is the
# same definition in Python.
_ACTIVITY = sa.text(
    "WITH kept AS (SELECT p.customer_id, p.purchase_key, p.partner_id, p.store_id,"
    " p.occurred_at, p.total - COALESCE(r.refunded, 0) AS net,"
    " c.purchase_id IS NOT NULL AS in_campaign, p.occurred_at > :start AS recent"
    " FROM purchases p"
    " LEFT JOIN (SELECT purchase_key, sum(amount) AS refunded FROM refunds"
    " WHERE customer_id = ANY(:ids) AND occurred_at <= :as_of GROUP BY purchase_key) r"
    " ON r.purchase_key = p.purchase_key"
    " LEFT JOIN (SELECT customer_id, purchase_id FROM campaign_purchases"
    " WHERE customer_id = ANY(:ids)) c"
    " ON c.customer_id = p.customer_id AND c.purchase_id = p.purchase_id"
    " WHERE p.customer_id = ANY(:ids) AND p.occurred_at <= :as_of"
    " AND p.total > COALESCE(r.refunded, 0)),"
    " gaps AS (SELECT *, occurred_at - lag(occurred_at) OVER (PARTITION BY customer_id"
    " ORDER BY occurred_at, purchase_key) AS gap,"
    " CASE WHEN recent THEN extract(epoch FROM occurred_at - lag(occurred_at) OVER"
    " (PARTITION BY customer_id, recent ORDER BY occurred_at, purchase_key)) / 86400"
    " END AS recent_gap FROM kept),"
    " totals AS (SELECT customer_id, max(occurred_at) AS last_at,"
    " max(occurred_at) FILTER (WHERE gap >= :lapse) AS returned_at,"
    " count(*) FILTER (WHERE recent) AS frequency,"
    " COALESCE(sum(net) FILTER (WHERE recent), 0) AS monetary,"
    " count(*) FILTER (WHERE recent AND in_campaign) AS in_campaigns,"
    " count(recent_gap) AS gaps, avg(recent_gap) AS gap_mean,"
    " stddev_pop(recent_gap) AS gap_stddev FROM gaps GROUP BY customer_id),"
    " places AS (SELECT DISTINCT ON (customer_id) customer_id, place, n FROM ("
    " SELECT customer_id, 'store ' || partner_id || '/' || store_id AS place, count(*) AS n"
    " FROM kept WHERE recent AND store_id IS NOT NULL GROUP BY customer_id, place"
    " UNION ALL SELECT customer_id, 'partner ' || partner_id, count(*) FROM kept"
    " WHERE recent GROUP BY customer_id, partner_id) counted"
    " ORDER BY customer_id, n DESC, place DESC)"
    " SELECT totals.*, places.place, places.n FROM totals"
    " LEFT JOIN places ON places.customer_id = totals.customer_id"
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
        self, customer_ids: Sequence[str], as_of: datetime, rules: Rules
    ) -> dict[str, MemberFacts]:
        ids = list(customer_ids)
        span = {"ids": ids, "as_of": as_of, "start": as_of - rules.window}
        members = await self._rows(_MEMBERS, ids=ids)
        activity = {
            row.customer_id: _activity(row)
            for row in await self._rows(_ACTIVITY, **span, lapse=rules.lapse)
        }
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
                activity=activity.get(row.customer_id, Activity()),
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


def _activity(row: sa.Row[Any]) -> Activity:
    return Activity(
        last_purchase_at=row.last_at,
        returned_at=row.returned_at,
        frequency=int(row.frequency),
        monetary=Decimal(row.monetary),
        campaign_purchases=int(row.in_campaigns),
        usual_place=row.place,
        usual_place_purchases=int(row.n or 0),
        rhythm_variation=variation(int(row.gaps), row.gap_mean, row.gap_stddev),
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
