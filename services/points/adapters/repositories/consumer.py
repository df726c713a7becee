"""What the points consumer (`handlers.apply_batch`) reads and writes: set-based, each
method takes or returns the rows of a whole batch and costs one statement, whatever the
batch's size."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from services.points import ports
from services.points.adapters.repositories.catalogue import coupon_of, reward_of
from services.points.adapters.repositories.common import SqlLedger, campaign_of, offer_of
from services.points.adapters.tables import campaigns, coupons, purchases, refunds, rewards
from services.points.domain.coupons import Coupon
from services.points.domain.earning import Campaign
from services.points.domain.engagement import Revocation
from services.points.domain.model import Member, TierAssignment
from services.points.domain.offers import Membership, PersonalOffer, SegmentChange
from services.points.domain.refunds import PurchaseRecord, RefundRecord
from services.points.domain.rewards import Reward
from services.points.domain.tender import TenderLink
from shared.storage.batches import by_keys, texts, unpacked


def consumer_repository(conn: AsyncConnection) -> ports.ConsumerRepository:
    return SqlConsumerRepository(conn)


class SqlConsumerRepository(SqlLedger):
    async def add_customers(self, members: Sequence[Member]) -> set[str]:
        if not members:
            return set()
        # In customer_id order: two instances adding the same new customers (during a
        # rebalance) then wait on each other in one order, never in a cycle.
        ordered = sorted(members, key=lambda m: m.customer_id)
        result = await self._conn.execute(
            _ADD_CUSTOMERS,
            {
                "ids": [m.customer_id for m in ordered],
                "partners": [m.partner_id for m in ordered],
                "enrolled": [m.enrolled_at for m in ordered],
                "referrers": [m.referred_by for m in ordered],
            },
        )
        return set(result.scalars())

    async def buyers_of(
        self, customer_ids: Collection[str]
    ) -> tuple[dict[str, TierAssignment], dict[str, str]]:
        if not customer_ids:
            return {}, {}
        rows = await self._conn.execute(_BUYERS_OF, {"ids": texts(list(customer_ids))})
        tiers: dict[str, TierAssignment] = {}
        referrers: dict[str, str] = {}
        for row in rows:
            if row.tier is not None:
                tiers[row.customer_id] = TierAssignment(row.customer_id, row.tier, row.effective_at)
            if row.referrer is not None:
                referrers[row.customer_id] = row.referrer
        return tiers, referrers

    async def set_tiers(self, assignments: Sequence[TierAssignment]) -> None:
        if not assignments:
            return
        ordered = sorted(assignments, key=lambda a: a.customer_id)
        await self._conn.execute(
            _SET_TIERS,
            {
                "ids": [a.customer_id for a in ordered],
                "tiers": [a.tier for a in ordered],
                "effective": [a.effective_at for a in ordered],
            },
        )

    async def campaigns_during(self, earliest: datetime, latest: datetime) -> list[Campaign]:
        rows = await self._conn.execute(_CAMPAIGNS_DURING, {"earliest": earliest, "latest": latest})
        return [campaign_of(row) for row in rows]

    async def earned_on(
        self, days: Collection[tuple[str, datetime, datetime]]
    ) -> dict[tuple[str, datetime], int]:
        if not days:
            return {}
        triples = list(days)
        rows = await self._conn.execute(
            _EARNED_ON,
            {
                "customers": texts([c for c, _, _ in triples]),
                "days": [start for _, start, _ in triples],
                "ends": [end for _, _, end in triples],
            },
        )
        return {(row.customer_id, row.day): int(row.points) for row in rows}

    async def record_purchases(self, records: Sequence[PurchaseRecord]) -> set[str]:
        if not records:
            return set()
        found = await self._conn.execute(
            _RECORD_PURCHASES,
            {
                "keys": texts([r.purchase_key for r in records]),
                "customers": texts([r.customer_id for r in records]),
                "ids": texts([r.purchase_id for r in records]),
                "totals": [r.total for r in records],
                "points": [r.points for r in records],
                "partners": texts([r.partner_id for r in records]),
            },
        )
        return set(found.scalars())

    async def purchases_of(self, keys: Collection[str]) -> dict[str, PurchaseRecord]:
        if not keys:
            return {}
        rows = await self._conn.execute(_PURCHASES_OF, {"keys": list(keys)})
        return {
            row.purchase_key: PurchaseRecord(
                row.purchase_key,
                row.customer_id,
                row.purchase_id,
                row.total,
                row.points,
                row.partner_id,
                redemption_id=row.redemption_id,
            )
            for row in rows
        }

    async def add_refunds(self, records: Sequence[RefundRecord]) -> None:
        if not records:
            return
        await self._conn.execute(
            _ADD_REFUNDS,
            {
                "keys": [r.refund_key for r in records],
                "purchases": [r.purchase_key for r in records],
                "customers": [r.customer_id for r in records],
                "ids": [r.refund_id for r in records],
                "amounts": [r.amount for r in records],
                "occurred": [r.occurred_at for r in records],
            },
        )

    async def refunds_of(self, keys: Collection[str]) -> dict[str, list[RefundRecord]]:
        if not keys:
            return {}
        rows = await self._conn.execute(_REFUNDS_OF, {"keys": list(keys)})
        found: dict[str, list[RefundRecord]] = {}
        for row in rows:
            found.setdefault(row.purchase_key, []).append(
                RefundRecord(
                    row.refund_key,
                    row.purchase_key,
                    row.customer_id,
                    row.refund_id,
                    row.amount,
                    row.occurred_at,
                )
            )
        return found

    async def targeting_of(
        self,
        members: Collection[str],
        offered: Collection[str],
        earliest: datetime,
        latest: datetime,
    ) -> tuple[dict[str, dict[str, Membership]], dict[str, list[PersonalOffer]]]:
        segments: dict[str, dict[str, Membership]] = {}
        offers: dict[str, list[PersonalOffer]] = {}
        if not members and not offered:
            return segments, offers
        rows = await self._conn.execute(
            _TARGETING_OF,
            {
                "members": sorted(members),
                "offered": sorted(offered),
                "earliest": earliest,
                "latest": latest,
            },
        )
        for row in rows:
            if row.offer_id is None:
                known = segments.setdefault(row.customer_id, {})
                known[row.name] = Membership(row.member, row.changed_at)
            else:
                offers.setdefault(row.customer_id, []).append(offer_of(row))
        return segments, offers

    async def set_segments(self, changes: Sequence[SegmentChange]) -> None:
        if not changes:
            return
        # In key order: two instances keeping the same members' changes wait in one order.
        ordered = sorted(changes, key=lambda c: (c.customer_id, c.segment))
        await self._conn.execute(
            _SET_SEGMENTS,
            {
                "customers": [c.customer_id for c in ordered],
                "segments": [c.segment for c in ordered],
                "members": [c.member for c in ordered],
                "changed": [c.changed_at for c in ordered],
            },
        )

    async def add_offers(self, offers: Sequence[PersonalOffer], made_at: datetime) -> set[str]:
        if not offers:
            return set()
        ordered = sorted(offers, key=lambda o: o.offer_id)
        result = await self._conn.execute(
            _ADD_OFFERS,
            {
                "ids": [o.offer_id for o in ordered],
                "customers": [o.customer_id for o in ordered],
                "reasons": [o.reason for o in ordered],
                "names": [o.name for o in ordered],
                "multipliers": [o.multiplier for o in ordered],
                "bonuses": [o.bonus for o in ordered],
                "starts": [o.starts_at for o in ordered],
                "ends": [o.ends_at for o in ordered],
                "made": made_at,
            },
        )
        return set(result.scalars())

    async def erase_targeting(self, customer_ids: Collection[str]) -> None:
        if customer_ids:
            await self._conn.execute(_ERASE_TARGETING, {"ids": sorted(customer_ids)})

    async def link_redemptions(self, links: Sequence[TenderLink]) -> dict[str, str]:
        if not links:
            return {}
        rows = await self._conn.execute(
            _LINK_REDEMPTIONS,
            {
                "keys": [link.purchase_key for link in links],
                "customers": [link.customer_id for link in links],
                "redemptions": [link.redemption_id for link in links],
            },
        )
        return {row.purchase_key: row.refused for row in rows}

    async def claim_grants(self, grants: Sequence[tuple[str, str]]) -> set[str]:
        if not grants:
            return set()
        # In grant order: two instances keeping the same grants wait in one order.
        ordered = sorted(set(grants))
        result = await self._conn.execute(
            _CLAIM_GRANTS,
            {"ids": [g for g, _ in ordered], "customers": [c for _, c in ordered]},
        )
        return set(result.scalars())

    async def add_revocations(self, revocations: Sequence[Revocation]) -> None:
        if not revocations:
            return
        # In grant order: two instances keeping the same revocations wait in one order.
        ordered = sorted(revocations, key=lambda r: r.grant_id)
        await self._conn.execute(
            _ADD_REVOCATIONS,
            {
                "ids": [r.grant_id for r in ordered],
                "customers": [r.customer_id for r in ordered],
                "refunds": [r.refund_id for r in ordered],
                "revoked": [r.revoked_at for r in ordered],
            },
        )

    async def rewards_of(self, reward_ids: Collection[str]) -> dict[str, Reward]:
        if not reward_ids:
            return {}
        rows = await self._conn.execute(_REWARDS_OF, {"keys": sorted(set(reward_ids))})
        return {row.reward_id: reward_of(row) for row in rows}

    async def take_stock(self, counts: Mapping[str, int]) -> set[str]:
        if not counts:
            return set()
        # In reward order: two instances counting off the same rewards wait in one order.
        ids = sorted(counts)
        taken = await self._conn.execute(
            _TAKE_STOCK, {"ids": ids, "counts": [counts[i] for i in ids]}
        )
        return set(ids) - set(taken.scalars())

    async def add_coupons(self, issued: Sequence[Coupon]) -> None:
        if not issued:
            return
        rows = [asdict(c) | {"status": c.status.value} for c in issued]
        await self._conn.execute(
            _ADD_COUPONS, {column: [row[column] for row in rows] for column in _COUPON_COLUMNS}
        )

    async def gift_coupons(self, grant_ids: Collection[str]) -> list[Coupon]:
        if not grant_ids:
            return []
        # In coupon order, as a till or the expiry job locks them one or a chunk at a time.
        rows = await self._conn.execute(_GIFT_COUPONS, {"keys": sorted(set(grant_ids))})
        return [coupon_of(row) for row in rows]

    async def save_revoked(self, revoked: Sequence[Coupon]) -> None:
        if not revoked:
            return
        await self._conn.execute(
            _SAVE_REVOKED,
            {
                "ids": [c.coupon_id for c in revoked],
                "statuses": [c.status.value for c in revoked],
                "revoked": [c.revoked_at for c in revoked],
            },
        )

    async def debtors(self, customer_ids: Collection[str]) -> set[str]:
        if not customer_ids:
            return set()
        rows = await self._conn.execute(_DEBTORS, {"ids": list(customer_ids)})
        return set(rows.scalars())


# Built once (shared.storage.batches): the same compiled statement and plan for every batch,
# and a lookup of each key through the index, never a scan of the table.
_PURCHASES_OF = by_keys(purchases, purchases.c.purchase_key)
_REFUNDS_OF = by_keys(refunds, refunds.c.purchase_key).order_by(refunds.c.seq)
_CAMPAIGNS_DURING = sa.select(campaigns).where(
    campaigns.c.starts_at <= sa.bindparam("latest"), campaigns.c.ends_at > sa.bindparam("earliest")
)

# The refunds table is read as it was before the insert (one snapshot): it only answers
# which purchases have refunds waiting, which the insert does not change.
_RECORD_PURCHASES = sa.text(
    "WITH kept AS ("  # noqa: S608  # unpacked(): ours
    "INSERT INTO purchases (purchase_key, customer_id, purchase_id, total, points, partner_id) "
    f"SELECT * FROM unnest({unpacked('keys')}, {unpacked('customers')}, {unpacked('ids')}, "
    f"CAST(:totals AS numeric[]), CAST(:points AS integer[]), {unpacked('partners')}) "
    "ON CONFLICT (purchase_key) DO NOTHING) "
    f"SELECT DISTINCT r.purchase_key FROM unnest({unpacked('keys')}) AS k(key) "
    "JOIN refunds r ON r.purchase_key = k.key"
)

# WITH ORDINALITY and ORDER BY: `seq` keeps the order the refunds came in.
_ADD_REFUNDS = sa.text(
    "INSERT INTO refunds (refund_key, purchase_key, customer_id, refund_id, amount, "
    "occurred_at) "
    "SELECT refund_key, purchase_key, customer_id, refund_id, amount, occurred_at "
    "FROM unnest(CAST(:keys AS text[]), CAST(:purchases AS text[]), "
    "CAST(:customers AS text[]), CAST(:ids AS text[]), CAST(:amounts AS numeric[]), "
    "CAST(:occurred AS timestamptz[])) "
    "WITH ORDINALITY AS r(refund_key, purchase_key, customer_id, refund_id, amount, "
    "occurred_at, n) "
    "ORDER BY n "
    "ON CONFLICT (refund_key) DO NOTHING"
)

# Points as tender: a purchase is linked to the redemption it names when that is a spend of
# the same customer, not a reward's (its coupon pays), that no other purchase names; of two
# purchases of the batch naming it, the first. A purchase linked already keeps its link.
_LINK_REDEMPTIONS = sa.text(
    "WITH wanted AS ("
    " SELECT * FROM unnest(CAST(:keys AS text[]), CAST(:customers AS text[]),"
    " CAST(:redemptions AS text[])) WITH ORDINALITY AS w(purchase_key, customer_id,"
    " redemption_id, n)"
    "), judged AS ("
    " SELECT w.purchase_key, w.redemption_id, CASE"
    " WHEN e.entry_id IS NULL OR e.kind NOT IN ('redeem', 'hold') THEN 'unknown-redemption'"
    " WHEN e.customer_id <> w.customer_id THEN 'another-customers-redemption'"
    " WHEN e.reward_id IS NOT NULL THEN 'reward-redemption'"
    " WHEN EXISTS (SELECT 1 FROM purchases o WHERE o.redemption_id = w.redemption_id"
    " AND o.purchase_key <> w.purchase_key) THEN 'redemption-used'"
    " WHEN row_number() OVER (PARTITION BY w.redemption_id"
    " ORDER BY e.customer_id = w.customer_id DESC, w.n) > 1 THEN 'redemption-used'"
    " END AS refused"
    " FROM wanted w LEFT JOIN ledger_entries e ON e.entry_id = w.redemption_id"
    "), linked AS ("
    " UPDATE purchases p SET redemption_id = j.redemption_id FROM judged j"
    " WHERE p.purchase_key = j.purchase_key AND j.refused IS NULL AND p.redemption_id IS NULL"
    ") SELECT purchase_key, refused FROM judged WHERE refused IS NOT NULL"
)

_DEBTORS = sa.text(
    "SELECT DISTINCT l.customer_id FROM ledger_entries l "
    "WHERE l.customer_id = ANY(CAST(:ids AS text[])) AND l.kind = 'reverse' "
    "AND -l.points > (SELECT coalesce(sum(a.points), 0) FROM allocations a "
    "WHERE a.entry_id = l.entry_id)"
)

# The day's quarter-hour sums, which the ledger's insert keeps (migration 0015): a day of the
# program's zone is whole quarters, and a member has at most a hundred of them in a day.
_EARNED_ON = sa.text(
    "SELECT k.customer_id, k.day, sum(q.points) AS points "  # noqa: S608  # unpacked(): ours
    f"FROM unnest({unpacked('customers')}, CAST(:days AS timestamptz[]), "
    "CAST(:ends AS timestamptz[])) AS k(customer_id, day, day_end) "
    "JOIN earned_quarter_hours q ON q.customer_id = k.customer_id "
    "AND q.quarter >= k.day AND q.quarter < k.day_end "
    "GROUP BY k.customer_id, k.day"
)

# A referrer counts when known and not the customer themselves.
_BUYERS_OF = sa.text(
    "SELECT k.id AS customer_id, t.tier, t.effective_at, "  # noqa: S608  # unpacked(): ours
    "CASE WHEN r.customer_id IS NOT NULL AND c.referred_by <> k.id "
    "THEN c.referred_by END AS referrer "
    f"FROM unnest({unpacked('ids')}) AS k(id) "
    "LEFT JOIN customer_tiers t ON t.customer_id = k.id "
    "LEFT JOIN customers c ON c.customer_id = k.id "
    "LEFT JOIN customers r ON r.customer_id = c.referred_by "
    "WHERE t.customer_id IS NOT NULL OR r.customer_id IS NOT NULL"
)

_ADD_CUSTOMERS = sa.text(
    "INSERT INTO customers (customer_id, partner_id, enrolled_at, referred_by) "
    "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:partners AS text[]), "
    "CAST(:enrolled AS timestamptz[]), CAST(:referrers AS text[])) "
    "ON CONFLICT (customer_id) DO NOTHING RETURNING customer_id"
)

# Tier events may arrive out of order across partitions: the latest change wins.
_SET_TIERS = sa.text(
    "INSERT INTO customer_tiers (customer_id, tier, effective_at) "
    "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:tiers AS text[]), "
    "CAST(:effective AS timestamptz[])) "
    "ON CONFLICT (customer_id) DO UPDATE SET tier = excluded.tier, "
    "effective_at = excluded.effective_at "
    "WHERE customer_tiers.effective_at <= excluded.effective_at"
)

# A grant id kept already (granted, or revoked first) is not claimed again.
_CLAIM_GRANTS = sa.text(
    "INSERT INTO engagement_grants (grant_id, customer_id) "
    "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:customers AS text[])) "
    "ON CONFLICT (grant_id) DO NOTHING RETURNING grant_id"
)

# A grant revoked twice keeps its first revocation (DISTINCT ON: one row per grant, as an
# upsert may touch a row once per statement).
_ADD_REVOCATIONS = sa.text(
    "INSERT INTO engagement_grants (grant_id, customer_id, refund_id, revoked_at) "
    "SELECT DISTINCT ON (grant_id) grant_id, customer_id, refund_id, revoked_at "
    "FROM unnest(CAST(:ids AS text[]), CAST(:customers AS text[]), "
    "CAST(:refunds AS text[]), CAST(:revoked AS timestamptz[])) WITH ORDINALITY "
    "AS r(grant_id, customer_id, refund_id, revoked_at, n) "
    "ORDER BY grant_id, n "
    "ON CONFLICT (grant_id) DO UPDATE SET revoked_at = excluded.revoked_at, "
    "refund_id = excluded.refund_id WHERE engagement_grants.revoked_at IS NULL"
)

_REWARDS_OF = by_keys(rewards, rewards.c.reward_id)

# Each reward's gifts counted off its stock, all or none of them.
_TAKE_STOCK = sa.text(
    "UPDATE rewards r SET redeemed = r.redeemed + w.n "
    "FROM unnest(CAST(:ids AS text[]), CAST(:counts AS integer[])) AS w(reward_id, n) "
    "WHERE r.reward_id = w.reward_id AND (r.stock IS NULL OR r.redeemed + w.n <= r.stock) "
    "RETURNING r.reward_id"
)

_COUPON_COLUMNS = (
    "coupon_id",
    "code",
    "customer_id",
    "reward_id",
    "redemption_id",
    "points",
    "status",
    "issued_at",
    "expires_at",
    "grant_id",
    "revoked_at",
)
_ADD_COUPONS = sa.text(
    "INSERT INTO coupons (coupon_id, code, customer_id, reward_id, redemption_id, points, "
    "status, issued_at, expires_at, grant_id, revoked_at) "
    "SELECT * FROM unnest(CAST(:coupon_id AS text[]), CAST(:code AS text[]), "
    "CAST(:customer_id AS text[]), CAST(:reward_id AS text[]), CAST(:redemption_id AS text[]), "
    "CAST(:points AS integer[]), CAST(:status AS text[]), CAST(:issued_at AS timestamptz[]), "
    "CAST(:expires_at AS timestamptz[]), CAST(:grant_id AS text[]), "
    "CAST(:revoked_at AS timestamptz[]))"
)

_GIFT_COUPONS = (
    by_keys(coupons, coupons.c.grant_id).order_by(coupons.c.coupon_id).with_for_update(of=coupons)
)

# A coupon's first revocation is the one kept.
_SAVE_REVOKED = sa.text(
    "UPDATE coupons c SET status = w.status, revoked_at = w.revoked_at "
    "FROM unnest(CAST(:ids AS text[]), CAST(:statuses AS text[]), "
    "CAST(:revoked AS timestamptz[])) AS w(coupon_id, status, revoked_at) "
    "WHERE c.coupon_id = w.coupon_id AND c.revoked_at IS NULL"
)

# Targeting in one statement: the members' segment rows (offer columns null), then the offers
# running during the batch (membership columns null), each through its table's key or index.
_TARGETING_OF = sa.text(
    "SELECT s.customer_id, s.segment AS name, s.member, s.changed_at, "
    "CAST(NULL AS text) AS offer_id, CAST(NULL AS text) AS reason, "
    "CAST(NULL AS numeric) AS multiplier, CAST(NULL AS integer) AS bonus, "
    "CAST(NULL AS timestamptz) AS starts_at, CAST(NULL AS timestamptz) AS ends_at "
    "FROM segment_memberships s WHERE s.customer_id = ANY(CAST(:members AS text[])) "
    "UNION ALL "
    "SELECT o.customer_id, o.name, NULL, NULL, o.offer_id, o.reason, o.multiplier, o.bonus, "
    "o.starts_at, o.ends_at FROM personal_offers o "
    "WHERE o.customer_id = ANY(CAST(:offered AS text[])) "
    "AND o.ends_at > CAST(:earliest AS timestamptz) "
    "AND o.starts_at <= CAST(:latest AS timestamptz)"
)

# The latest change of a member and segment wins: an older or equally recent one (the same
# evaluation delivered again) leaves the row as it is, whatever order they come in.
_SET_SEGMENTS = sa.text(
    "INSERT INTO segment_memberships (customer_id, segment, member, changed_at) "
    "SELECT * FROM unnest(CAST(:customers AS text[]), CAST(:segments AS text[]), "
    "CAST(:members AS boolean[]), CAST(:changed AS timestamptz[])) "
    "ON CONFLICT (customer_id, segment) DO UPDATE SET member = excluded.member, "
    "changed_at = excluded.changed_at "
    "WHERE segment_memberships.changed_at < excluded.changed_at"
)

_ADD_OFFERS = sa.text(
    "INSERT INTO personal_offers (offer_id, customer_id, reason, name, multiplier, bonus, "
    "starts_at, ends_at, created_at) "
    "SELECT o.*, CAST(:made AS timestamptz) FROM unnest(CAST(:ids AS text[]), "
    "CAST(:customers AS text[]), CAST(:reasons AS text[]), CAST(:names AS text[]), "
    "CAST(:multipliers AS numeric[]), CAST(:bonuses AS integer[]), "
    "CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[])) "
    "AS o(offer_id, customer_id, reason, name, multiplier, bonus, starts_at, ends_at) "
    "ON CONFLICT (offer_id) DO NOTHING RETURNING offer_id"
)

_ERASE_TARGETING = sa.text(
    "WITH gone AS (DELETE FROM segment_memberships "
    "WHERE customer_id = ANY(CAST(:ids AS text[]))) "
    "DELETE FROM personal_offers WHERE customer_id = ANY(CAST(:ids AS text[]))"
)
