"""Feedback's storage: the consumer's statements (each one per batch, called
by `SqlConsumerRepository`) and the feedback API's repository (the reward, the NPS report)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.engagement import ports
from services.engagement.adapters import tables
from services.engagement.domain.feedback import Feedback, FeedbackReward, Nps
from services.engagement.domain.model import Reward

_SINGLE = 1  # the id of the one feedback_reward row


async def note_feedback_erased(
    conn: AsyncConnection, customer_ids: Collection[str], at: datetime
) -> None:
    if not customer_ids:
        return
    await conn.execute(
        insert(tables.feedback_erased_members)
        .values([{"customer_id": c, "erased_at": at} for c in sorted(customer_ids)])
        .on_conflict_do_nothing(index_elements=["customer_id"])
    )


async def record_feedback(conn: AsyncConnection, given: Sequence[Feedback]) -> set[str]:
    if not given:
        return set()
    ordered = sorted(given, key=lambda f: f.key)
    rows = await conn.execute(
        _RECORD_FEEDBACK,
        {
            "keys": [f.key for f in ordered],
            "ids": [f.feedback_id for f in ordered],
            "partners": [f.partner_id for f in ordered],
            "stores": [f.store_id for f in ordered],
            "customers": [f.customer_id for f in ordered],
            "purchases": [f.purchase_key for f in ordered],
            "kinds": [f.kind for f in ordered],
            "scores": [f.score for f in ordered],
            "comments": [f.comment for f in ordered],
            "ats": [f.given_at for f in ordered],
        },
    )
    return set(rows.scalars())


async def feedback_reward(conn: AsyncConnection) -> FeedbackReward | None:
    row = (await conn.execute(sa.select(tables.feedback_reward))).first()
    if row is None:
        return None
    return FeedbackReward(
        reward=Reward(points=row.reward_points, reward_id=row.reward_id),
        kinds=frozenset(row.kinds),
        name=row.name,
    )


async def record_feedback_rewards(
    conn: AsyncConnection, grants: Sequence[ports.FeedbackGrant]
) -> set[str]:
    if not grants:
        return set()
    table = tables.feedback_rewards
    rows = await conn.execute(
        insert(table)
        .values(
            [
                {
                    "purchase_key": g.purchase_key,
                    "customer_id": g.customer_id,
                    "feedback_key": g.feedback_key,
                    "grant_id": g.grant_id,
                    "granted_at": g.granted_at,
                }
                for g in sorted(grants, key=lambda g: g.purchase_key)
            ]
        )
        .on_conflict_do_nothing()
        .returning(table.c.purchase_key)
    )
    return set(rows.scalars())


def feedback_repository(conn: AsyncConnection) -> ports.FeedbackRepository:
    return SqlFeedback(conn)


class SqlFeedback:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def feedback_reward(self) -> FeedbackReward | None:
        return await feedback_reward(self._conn)

    async def set_feedback_reward(self, config: FeedbackReward, at: datetime) -> None:
        values: dict[str, Any] = {
            "name": config.name,
            "reward_points": config.reward.points,
            "reward_id": config.reward.reward_id,
            "kinds": sorted(config.kinds),
            "updated_at": at,
        }
        statement = insert(tables.feedback_reward).values(id=_SINGLE, **values)
        await self._conn.execute(
            statement.on_conflict_do_update(index_elements=["id"], set_=values)
        )

    async def stop_feedback_reward(self) -> bool:
        result = await self._conn.execute(
            tables.feedback_reward.delete().returning(tables.feedback_reward.c.id)
        )
        return result.first() is not None

    async def nps(
        self,
        partner_id: str | None,
        store_id: str | None,
        since: datetime | None,
        until: datetime | None,
    ) -> Nps:
        row = (
            await self._conn.execute(
                _NPS,
                {"partner": partner_id, "store": store_id, "since": since, "until": until},
            )
        ).one()
        return Nps(
            count=row.answers,
            promoters=row.promoters,
            passives=row.passives,
            detractors=row.detractors,
            score=row.score,
        )


# A feedback of a member erased before it was read is never kept (its comment with it).
_RECORD_FEEDBACK = sa.text(
    "INSERT INTO feedback (feedback_key, feedback_id, partner_id, store_id, customer_id, "
    "purchase_key, kind, score, comment, given_at) "
    "SELECT v.* FROM unnest(CAST(:keys AS text[]), CAST(:ids AS text[]), "
    "CAST(:partners AS text[]), CAST(:stores AS text[]), CAST(:customers AS text[]), "
    "CAST(:purchases AS text[]), CAST(:kinds AS text[]), CAST(:scores AS smallint[]), "
    "CAST(:comments AS text[]), CAST(:ats AS timestamptz[])) "
    "AS v(feedback_key, feedback_id, partner_id, store_id, customer_id, purchase_key, kind, "
    "score, comment, given_at) "
    "WHERE NOT EXISTS (SELECT 1 FROM feedback_erased_members AS e "
    "WHERE e.customer_id = v.customer_id) "
    "ON CONFLICT (feedback_key) DO NOTHING RETURNING feedback_key"
)
# Set-based: one pass over the partner's (and store's) nps feedback of the window.
_NPS = sa.text(
    "SELECT count(*) AS answers, "
    "count(*) FILTER (WHERE score >= 9) AS promoters, "
    "count(*) FILTER (WHERE score BETWEEN 7 AND 8) AS passives, "
    "count(*) FILTER (WHERE score <= 6) AS detractors, "
    "CASE WHEN count(*) = 0 THEN NULL ELSE round(100.0 * "
    "(count(*) FILTER (WHERE score >= 9) - count(*) FILTER (WHERE score <= 6)) "
    "/ count(*), 1) END AS score "
    "FROM feedback WHERE kind = 'nps' AND score IS NOT NULL "
    "AND (CAST(:partner AS text) IS NULL OR partner_id = CAST(:partner AS text)) "
    "AND (CAST(:store AS text) IS NULL OR store_id = CAST(:store AS text)) "
    "AND (CAST(:since AS timestamptz) IS NULL OR given_at >= CAST(:since AS timestamptz)) "
    "AND (CAST(:until AS timestamptz) IS NULL OR given_at < CAST(:until AS timestamptz))"
)
