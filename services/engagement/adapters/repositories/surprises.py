"""Surprise rewards in the database: the rules' rows, the consumer's set-based statements
(each function one batch, called by `SqlConsumerRepository`), and the rules' API."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.engagement import ports
from services.engagement.adapters import tables
from services.engagement.adapters.repositories.api import SqlApiRepository
from services.engagement.adapters.repositories.rules import reward_of
from services.engagement.domain.model import Scope, Window
from services.engagement.domain.surprises import BudgetKey, MemberKey, SurpriseRule, Win
from shared.storage.db import insert_many
from shared.storage.locks import lock_for_transaction, lock_name

_rules = tables.surprise_rules
_wins = tables.surprise_wins
LOCK_NAMESPACE = "engagement-surprise"


def surprise_of(row: sa.Row[tuple[object, ...]]) -> SurpriseRule:
    reward = reward_of(row)
    assert reward is not None  # a surprise always has one (the API requires it)
    return SurpriseRule(
        surprise_id=row.surprise_id,
        name=row.name,
        chance=Decimal(row.chance).normalize(),
        reward=reward,
        scope=Scope(partner_id=row.partner_id, store_id=row.store_id, category=row.category),
        window=Window(starts_at=row.starts_at, ends_at=row.ends_at),
        min_tier=row.min_tier,
        daily_budget=row.daily_budget,
        cooldown_days=row.cooldown_days,
        tier=row.tier,
        segment=row.segment,
    )


def surprise_row(rule: SurpriseRule, created_at: datetime) -> dict[str, object]:
    return {
        "surprise_id": rule.surprise_id,
        "name": rule.name,
        "chance": rule.chance,
        "partner_id": rule.scope.partner_id,
        "store_id": rule.scope.store_id,
        "category": rule.scope.category,
        "min_tier": rule.min_tier,
        "tier": rule.tier,
        "segment": rule.segment,
        "reward_points": rule.reward.points,
        "reward_id": rule.reward.reward_id,
        "daily_budget": rule.daily_budget,
        "cooldown_days": rule.cooldown_days,
        "starts_at": rule.window.starts_at,
        "ends_at": rule.window.ends_at,
        "created_at": created_at,
    }


# The consumer's statements ---------------------------------------------------------------


async def surprises_in_force(conn: AsyncConnection, since: datetime) -> list[SurpriseRule]:
    rows = await conn.execute(
        sa.select(_rules).where(
            sa.or_(_rules.c.ends_at.is_(None), _rules.c.ends_at > since),
            _rules.c.ended_at.is_(None),
        )
    )
    return [surprise_of(row) for row in rows]


async def surprise_wins_of(
    conn: AsyncConnection, keys: Collection[MemberKey]
) -> dict[MemberKey, list[Win]]:
    if not keys:
        return {}
    ordered = sorted(keys)
    await lock_for_transaction(conn, [lock_name(LOCK_NAMESPACE, r, c) for r, c in ordered])
    rows = await conn.execute(
        _WINS_OF, {"rules": [r for r, _ in ordered], "customers": [c for _, c in ordered]}
    )
    found: dict[MemberKey, list[Win]] = {key: [] for key in ordered}
    for row in rows:
        found[(row.surprise_id, row.customer_id)].append(
            Win(row.surprise_id, row.customer_id, row.purchase_key, row.won_at)
        )
    return found


async def lock_budgets(conn: AsyncConnection, keys: Collection[BudgetKey]) -> dict[BudgetKey, int]:
    if not keys:
        return {}
    ordered = sorted(keys)
    table = tables.surprise_budgets
    new = [{"surprise_id": r, "day": d, "spent": 0} for r, d in ordered]
    await conn.execute(insert(table).on_conflict_do_nothing(), new)
    rows = await conn.execute(
        _LOCK_BUDGETS, {"rules": [r for r, _ in ordered], "days": [d for _, d in ordered]}
    )
    return {(row.surprise_id, row.day): row.spent for row in rows}


async def save_budgets(conn: AsyncConnection, spent: Mapping[BudgetKey, int]) -> None:
    if not spent:
        return
    ordered = sorted(spent.items())
    await conn.execute(
        _SAVE_BUDGETS,
        {
            "rules": [r for (r, _), _ in ordered],
            "days": [d for (_, d), _ in ordered],
            "spent": [s for _, s in ordered],
        },
    )


async def record_surprise_wins(
    conn: AsyncConnection, wins: Sequence[ports.SurpriseWin]
) -> set[tuple[str, str]]:
    if not wins:
        return set()
    rows = [
        {
            "surprise_id": w.surprise_id,
            "purchase_key": w.purchase_key,
            "customer_id": w.customer_id,
            "grant_id": w.grant_id,
            "won_at": w.won_at,
            "total": w.total,
            "refunded": Decimal(0),
            "revoked_at": None,
        }
        for w in wins
    ]
    return {(rule, key) for rule, key in await insert_many(conn, _wins, rows)}


async def refund_surprise_wins(
    conn: AsyncConnection, refunded: Mapping[str, Decimal], at: datetime
) -> list[ports.SurpriseWin]:
    if not refunded:
        return []
    ordered = sorted(refunded.items())
    rows = await conn.execute(
        _REFUND_WINS,
        {"keys": [k for k, _ in ordered], "amounts": [a for _, a in ordered], "at": at},
    )
    return [
        ports.SurpriseWin(
            row.surprise_id, row.customer_id, row.purchase_key, row.grant_id, row.won_at, row.total
        )
        for row in rows
        if row.revoked_at is not None
    ]


_WINS_OF = sa.text(
    "SELECT w.surprise_id, w.customer_id, w.purchase_key, w.won_at FROM surprise_wins AS w "
    "JOIN unnest(CAST(:rules AS text[]), CAST(:customers AS text[])) "
    "AS k(surprise_id, customer_id) USING (surprise_id, customer_id) "
    "ORDER BY w.won_at, w.purchase_key"
)
_LOCK_BUDGETS = sa.text(
    "SELECT b.surprise_id, b.day, b.spent FROM surprise_budgets AS b "
    "JOIN unnest(CAST(:rules AS text[]), CAST(:days AS date[])) AS k(surprise_id, day) "
    "USING (surprise_id, day) ORDER BY b.surprise_id, b.day FOR UPDATE OF b"
)
_SAVE_BUDGETS = sa.text(
    "UPDATE surprise_budgets AS b SET spent = v.spent "
    "FROM unnest(CAST(:rules AS text[]), CAST(:days AS date[]), CAST(:spent AS int[])) "
    "AS v(surprise_id, day, spent) WHERE b.surprise_id = v.surprise_id AND b.day = v.day"
)
# A win is taken back once, when the refunds of its purchase reach the purchase's total.
_REFUND_WINS = sa.text(
    "UPDATE surprise_wins AS w SET refunded = LEAST(w.total, w.refunded + v.amount), "
    "revoked_at = CASE WHEN w.refunded + v.amount >= w.total THEN "
    "CAST(:at AS timestamptz) END "
    "FROM unnest(CAST(:keys AS text[]), CAST(:amounts AS numeric[])) AS v(purchase_key, amount) "
    "WHERE w.purchase_key = v.purchase_key AND w.revoked_at IS NULL "
    "RETURNING w.surprise_id, w.customer_id, w.purchase_key, w.grant_id, w.won_at, w.total, "
    "w.revoked_at"
)


# The rules' API --------------------------------------------------------------------------


def surprise_repository(conn: AsyncConnection) -> ports.SurpriseRepository:
    return SqlSurpriseRepository(conn)


class SqlSurpriseRepository(SqlApiRepository):
    async def add_surprise(self, rule: SurpriseRule, created_at: datetime) -> None:
        await self._conn.execute(_rules.insert().values(surprise_row(rule, created_at)))

    async def surprise(self, surprise_id: str) -> SurpriseRule | None:
        row = (
            await self._conn.execute(sa.select(_rules).where(_rules.c.surprise_id == surprise_id))
        ).first()
        return surprise_of(row) if row is not None else None

    async def all_surprises(self) -> list[SurpriseRule]:
        rows = await self._conn.execute(sa.select(_rules).order_by(_rules.c.created_at))
        return [surprise_of(row) for row in rows]

    async def end_surprise(self, surprise_id: str, at: datetime) -> bool:
        return await self._end(_rules, _rules.c.surprise_id == surprise_id, at)

    async def surprise_for_update(self, surprise_id: str) -> ports.LockedRule[SurpriseRule] | None:
        row = (
            await self._conn.execute(
                sa.select(_rules).where(_rules.c.surprise_id == surprise_id).with_for_update()
            )
        ).first()
        return ports.LockedRule(surprise_of(row), row.ended_at) if row is not None else None

    async def replace_surprise(self, rule: SurpriseRule) -> None:
        # Only what a PATCH may change: the scope and the start stay.
        await self._conn.execute(
            _rules.update()
            .where(_rules.c.surprise_id == rule.surprise_id)
            .values(
                name=rule.name,
                reward_points=rule.reward.points,
                reward_id=rule.reward.reward_id,
                chance=rule.chance,
                daily_budget=rule.daily_budget,
                cooldown_days=rule.cooldown_days,
                ends_at=rule.window.ends_at,
                min_tier=rule.min_tier,
                tier=rule.tier,
                segment=rule.segment,
            )
        )

    async def win_of(self, surprise_id: str, purchase_key: str) -> ports.RecordedWin | None:
        row = (
            await self._conn.execute(
                sa.select(_wins.c.grant_id, _wins.c.won_at, _wins.c.revoked_at).where(
                    _wins.c.surprise_id == surprise_id, _wins.c.purchase_key == purchase_key
                )
            )
        ).first()
        return ports.RecordedWin(row.grant_id, row.won_at, row.revoked_at) if row else None
