"""The reward catalogue and its coupons on PostgreSQL: rewards, the conditional UPDATE that
takes one of a reward's stock (never oversold: concurrent takers wait on the row and see the
count the first one left), and coupons with their reward's name and honouring partner."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from services.points import ports
from services.points.adapters.tables import coupons, customer_tiers, ledger_entries, rewards
from services.points.domain.coupons import Coupon, CouponStatus
from services.points.domain.rewards import Reward, RewardKind


def catalogue_repository(conn: AsyncConnection) -> ports.CatalogueRepository:
    return SqlCatalogueRepository(conn)


class SqlCatalogueRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add_reward(self, reward: Reward) -> None:
        await self._conn.execute(rewards.insert().values(**_reward_row(reward)))

    async def reward(self, reward_id: str, *, for_update: bool = False) -> Reward | None:
        query = sa.select(rewards).where(rewards.c.reward_id == reward_id)
        if for_update:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return None if row is None else reward_of(row)

    async def rewards(
        self, *, now: datetime, include_ended: bool, partner_id: str | None = None
    ) -> list[Reward]:
        query = sa.select(rewards)
        if not include_ended:
            query = query.where(
                sa.or_(rewards.c.retired_at.is_(None), rewards.c.retired_at > now),
                sa.or_(rewards.c.ends_at.is_(None), rewards.c.ends_at > now),
            )
        if partner_id is not None:
            query = query.where(
                sa.or_(rewards.c.partner_id.is_(None), rewards.c.partner_id == partner_id)
            )
        rows = await self._conn.execute(query.order_by(rewards.c.created_at, rewards.c.reward_id))
        return [reward_of(row) for row in rows]

    async def replace_reward(self, reward: Reward) -> None:
        values = _reward_row(reward)
        del values["reward_id"], values["redeemed"], values["created_at"]
        await self._conn.execute(
            rewards.update().where(rewards.c.reward_id == reward.reward_id).values(**values)
        )

    async def take_one(self, reward_id: str) -> bool:
        taken = await self._conn.execute(
            rewards.update()
            .where(
                rewards.c.reward_id == reward_id,
                sa.or_(rewards.c.stock.is_(None), rewards.c.redeemed < rewards.c.stock),
            )
            .values(redeemed=rewards.c.redeemed + 1)
        )
        return taken.rowcount == 1

    async def tier_of(self, customer_id: str) -> str | None:
        tier: str | None = await self._conn.scalar(
            sa.select(customer_tiers.c.tier).where(customer_tiers.c.customer_id == customer_id)
        )
        return tier

    async def coupons_held(self, customer_id: str, reward_ids: Collection[str]) -> dict[str, int]:
        if not reward_ids:
            return {}
        rows = await self._conn.execute(
            sa.select(coupons.c.reward_id, sa.func.count())
            .where(
                coupons.c.customer_id == customer_id,
                coupons.c.reward_id == sa.any_(sa.cast(list(reward_ids), ARRAY(sa.Text))),
                coupons.c.grant_id.is_(None),  # gifts count against no member's limit
            )
            .group_by(coupons.c.reward_id)
        )
        return {row[0]: int(row[1]) for row in rows}

    async def add_coupon(self, coupon: Coupon) -> None:
        values = asdict(coupon)
        values["status"] = coupon.status.value
        await self._conn.execute(coupons.insert().values(**values))

    async def coupon_by_code(self, code: str) -> ports.IssuedCoupon | None:
        row = (
            await self._conn.execute(
                _WITH_REWARD.where(coupons.c.code == code).with_for_update(of=coupons)
            )
        ).first()
        return None if row is None else _issued(row)

    async def coupon(self, coupon_id: str) -> ports.IssuedCoupon | None:
        row = (
            await self._conn.execute(_WITH_REWARD.where(coupons.c.coupon_id == coupon_id))
        ).first()
        return None if row is None else _issued(row)

    async def coupons_of(self, customer_id: str, limit: int) -> list[ports.IssuedCoupon]:
        rows = await self._conn.execute(
            _WITH_REWARD.where(coupons.c.customer_id == customer_id)
            .order_by(coupons.c.issued_at.desc(), coupons.c.coupon_id)
            .limit(limit)
        )
        return [_issued(row) for row in rows]

    async def save_taken(self, coupon: Coupon) -> None:
        await self._conn.execute(
            coupons.update()
            .where(coupons.c.coupon_id == coupon.coupon_id)
            .values(
                status=coupon.status.value,
                redeemed_at=coupon.redeemed_at,
                partner_id=coupon.partner_id,
                store_id=coupon.store_id,
                purchase_id=coupon.purchase_id,
            )
        )

    async def attribute_redemption(
        self, redemption_id: str, partner_id: str, store_id: str | None
    ) -> None:
        await self._conn.execute(
            ledger_entries.update()
            .where(
                ledger_entries.c.entry_id == redemption_id,
                ledger_entries.c.partner_id.is_(None),
            )
            .values(partner_id=partner_id, store_id=store_id)
        )


_WITH_REWARD = sa.select(
    coupons,
    rewards.c.name.label("reward_name"),
    rewards.c.partner_id.label("honoured_by"),
).join(rewards, rewards.c.reward_id == coupons.c.reward_id)


def _issued(row: sa.Row[Any]) -> ports.IssuedCoupon:
    return ports.IssuedCoupon(coupon_of(row), row.reward_name, row.honoured_by)


def coupon_of(row: sa.Row[Any]) -> Coupon:
    return Coupon(
        coupon_id=row.coupon_id,
        code=row.code,
        customer_id=row.customer_id,
        reward_id=row.reward_id,
        redemption_id=row.redemption_id,
        points=row.points,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        status=CouponStatus(row.status),
        redeemed_at=row.redeemed_at,
        partner_id=row.partner_id,
        store_id=row.store_id,
        purchase_id=row.purchase_id,
        expired_at=row.expired_at,
        points_returned=row.points_returned,
        grant_id=row.grant_id,
        revoked_at=row.revoked_at,
    )


def reward_of(row: sa.Row[Any]) -> Reward:
    return Reward(
        reward_id=row.reward_id,
        name=row.name,
        kind=RewardKind(row.kind),
        points_cost=row.points_cost,
        created_at=row.created_at,
        description=row.description,
        value=row.value,
        partner_id=row.partner_id,
        min_tier=row.min_tier,
        stock=row.stock,
        redeemed=row.redeemed,
        per_customer_limit=row.per_customer_limit,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        coupon_validity_days=row.coupon_validity_days,
        retired_at=row.retired_at,
    )


def _reward_row(reward: Reward) -> dict[str, Any]:
    values = asdict(reward)
    values["kind"] = reward.kind.value
    return values
