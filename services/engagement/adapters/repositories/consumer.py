"""What the consumer's batch handler (`handlers.apply_batch`) reads and writes: set-based, each
method takes or returns the rows of a whole batch and costs one statement."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.engagement import ports
from services.engagement.adapters import tables
from services.engagement.adapters.repositories import feedback as feedback_sql
from services.engagement.adapters.repositories import surprises as surprise_sql
from services.engagement.adapters.repositories.rules import SqlRules
from services.engagement.domain.challenges import Contribution
from services.engagement.domain.feedback import Feedback, FeedbackReward
from services.engagement.domain.model import Membership, Purchase, refunded_share
from services.engagement.domain.stamps import Card
from services.engagement.domain.surprises import BudgetKey, MemberKey, SurpriseRule, Win
from services.engagement.ports import (
    Badge,
    CardKey,
    ChallengeKey,
    CompletedCard,
    CompletionKey,
    Counted,
)
from shared.storage.db import insert_many

_ERASED_FROM = (
    tables.members,
    tables.stamp_cards,
    tables.stamp_purchases,
    tables.stamp_completions,
    tables.challenge_contributions,
    tables.challenge_progress,
    tables.badges,
    tables.refunds_seen,
    tables.surprise_wins,
    tables.birthday_grants,
    tables.feedback,
    tables.feedback_rewards,
    tables.segment_memberships,
)


def _referred(rows: Iterable[sa.Row[tuple[object, ...]]]) -> list[ports.FirstPurchase]:
    return [
        ports.FirstPurchase(
            referrer=row.referred_by,
            member=row.customer_id,
            purchase_key=row.first_purchase_key,
            occurred_at=row.first_purchase_at,
            total=row.first_purchase_total,
        )
        for row in rows
        if row.referred_by is not None and row.first_purchase_key is not None
    ]


def consumer_repository(conn: AsyncConnection) -> ports.ConsumerRepository:
    return SqlConsumerRepository(conn)


class SqlConsumerRepository(SqlRules):
    def __init__(self, conn: AsyncConnection) -> None:
        super().__init__(conn)
        self._conn = conn

    async def enrol(
        self, enrolled: Mapping[str, datetime], referred_by: Mapping[str, str]
    ) -> list[ports.FirstPurchase]:
        if not enrolled:
            return []
        ordered = sorted(enrolled)
        rows = await self._conn.execute(
            _ENROL,
            {
                "ids": ordered,
                "ats": [enrolled[c] for c in ordered],
                "referrers": [referred_by.get(c) for c in ordered],
            },
        )
        return _referred(rows)

    async def note_first_purchases(self, firsts: Sequence[Purchase]) -> list[ports.FirstPurchase]:
        if not firsts:
            return []
        ordered = sorted(firsts, key=lambda p: p.customer_id)
        rows = await self._conn.execute(
            _FIRST_PURCHASES,
            {
                "ids": [p.customer_id for p in ordered],
                "keys": [p.key for p in ordered],
                "ats": [p.occurred_at for p in ordered],
                "totals": [p.total for p in ordered],
            },
        )
        return _referred(rows)

    async def set_tiers(self, tiers: Mapping[str, str]) -> None:
        if not tiers:
            return
        rows = [{"customer_id": c, "tier": tier} for c, tier in sorted(tiers.items())]
        statement = insert(tables.members)
        await self._conn.execute(
            statement.on_conflict_do_update(
                index_elements=["customer_id"], set_={"tier": statement.excluded.tier}
            ),
            rows,
        )

    async def tiers_of(self, customer_ids: Collection[str]) -> dict[str, str | None]:
        if not customer_ids:
            return {}
        members = tables.members
        rows = await self._conn.execute(
            sa.select(members.c.customer_id, members.c.tier).where(
                members.c.customer_id.in_(sorted(customer_ids))
            )
        )
        return {row.customer_id: row.tier for row in rows}

    async def note_segments(self, changes: Collection[Membership]) -> None:
        if not changes:
            return
        ordered = sorted(changes, key=lambda m: (m.customer_id, m.segment))
        await self._conn.execute(
            _NOTE_SEGMENTS,
            {
                "ids": [m.customer_id for m in ordered],
                "segments": [m.segment for m in ordered],
                "members": [m.member for m in ordered],
                "ats": [m.changed_at for m in ordered],
            },
        )

    async def record_stamps(self, given: Sequence[ports.StampPurchase]) -> set[tuple[str, str]]:
        if not given:
            return set()
        rows = [
            {
                "card_id": g.card_id,
                "purchase_key": g.purchase_key,
                "customer_id": g.customer_id,
                "given": g.given,
                "total": g.total,
                "refunded": g.refunded,
            }
            for g in given
        ]
        new = await insert_many(self._conn, tables.stamp_purchases, rows)
        return {(card_id, purchase_key) for card_id, purchase_key in new}

    async def lock_cards(self, keys: Collection[CardKey]) -> dict[CardKey, Card]:
        if not keys:
            return {}
        ordered = sorted(keys)
        table = tables.stamp_cards
        new = [
            {"card_id": k, "customer_id": c, "stamps": 0, "completed_count": 0} for k, c in ordered
        ]
        await self._conn.execute(insert(table).on_conflict_do_nothing(), new)
        rows = await self._conn.execute(
            _LOCK_CARDS, {"cards": [k for k, _ in ordered], "customers": [c for _, c in ordered]}
        )
        return {
            (row.card_id, row.customer_id): Card(
                card_id=row.card_id,
                customer_id=row.customer_id,
                stamps=row.stamps,
                completed_count=row.completed_count,
            )
            for row in rows
        }

    async def save_cards(self, cards: Sequence[Card]) -> None:
        if not cards:
            return
        await self._conn.execute(
            _SAVE_CARDS,
            {
                "cards": [c.card_id for c in cards],
                "customers": [c.customer_id for c in cards],
                "stamps": [c.stamps for c in cards],
                "counts": [c.completed_count for c in cards],
            },
        )

    async def add_completions(self, completed: Sequence[CompletedCard]) -> None:
        if not completed:
            return
        rows = [
            {
                "grant_id": c.grant_id,
                "card_id": c.card_id,
                "customer_id": c.customer_id,
                "number": c.number,
                "purchase_key": c.purchase_key,
                "completed_at": c.completed_at,
                "revoked_at": None,
            }
            for c in completed
        ]
        await self._conn.execute(insert(tables.stamp_completions).on_conflict_do_nothing(), rows)

    async def revoke_completions(
        self, completions: Collection[CompletionKey], at: datetime
    ) -> dict[CompletionKey, str]:
        if not completions:
            return {}
        ordered = sorted(completions)
        rows = await self._conn.execute(
            _REVOKE,
            {
                "cards": [k for k, _, _ in ordered],
                "customers": [c for _, c, _ in ordered],
                "numbers": [n for _, _, n in ordered],
                "at": at,
            },
        )
        return {(row.card_id, row.customer_id, row.number): row.grant_id for row in rows}

    async def record_refunds(self, refunds: Mapping[str, str]) -> set[str]:
        if not refunds:
            return set()
        rows = [{"refund_key": k, "customer_id": c} for k, c in sorted(refunds.items())]
        return {key for (key,) in await insert_many(self._conn, tables.refunds_seen, rows)}

    async def stamp_purchases_of(self, purchase_keys: Collection[str]) -> list[ports.StampPurchase]:
        if not purchase_keys:
            return []
        table = tables.stamp_purchases
        rows = await self._conn.execute(
            sa.select(table)
            .where(table.c.purchase_key.in_(sorted(purchase_keys)))
            .order_by(table.c.card_id, table.c.purchase_key)
            .with_for_update()
        )
        return [
            ports.StampPurchase(
                card_id=row.card_id,
                customer_id=row.customer_id,
                purchase_key=row.purchase_key,
                given=row.given,
                total=row.total,
                refunded=row.refunded,
            )
            for row in rows
        ]

    async def save_refunded(self, purchases: Sequence[ports.StampPurchase]) -> None:
        if not purchases:
            return
        await self._conn.execute(
            _SAVE_REFUNDED,
            {
                "cards": [p.card_id for p in purchases],
                "keys": [p.purchase_key for p in purchases],
                "refunded": [p.refunded for p in purchases],
            },
        )

    async def record_contributions(self, counted: Sequence[Counted]) -> set[tuple[str, ...]]:
        if not counted:
            return set()
        table = tables.challenge_contributions
        rows = [
            {
                "challenge_id": c.challenge_id,
                "customer_id": c.customer_id,
                "source_key": c.source_key,
                "occurred_at": c.contribution.occurred_at,
                "amount": c.contribution.amount,
                "total": c.total,
                "refunded": Decimal(0),
                "partner_id": c.contribution.partner_id,
                "categories": sorted(c.contribution.categories),
            }
            for c in counted
        ]
        return {tuple(key) for key in await insert_many(self._conn, table, rows)}

    async def open_challenges(self, keys: Collection[ChallengeKey]) -> set[ChallengeKey]:
        if not keys:
            return set()
        ordered = sorted(keys)
        table = tables.challenge_progress
        new = [{"challenge_id": k, "customer_id": c, "completed_at": None} for k, c in ordered]
        await self._conn.execute(insert(table).on_conflict_do_nothing(), new)
        rows = await self._conn.execute(
            _LOCK_PROGRESS,
            {"challenges": [k for k, _ in ordered], "customers": [c for _, c in ordered]},
        )
        return {(row.challenge_id, row.customer_id) for row in rows if row.completed_at is None}

    async def contributions_of(
        self, keys: Collection[ChallengeKey]
    ) -> dict[ChallengeKey, list[Contribution]]:
        if not keys:
            return {}
        ordered = sorted(keys)
        rows = await self._conn.execute(
            _CONTRIBUTIONS,
            {"challenges": [k for k, _ in ordered], "customers": [c for _, c in ordered]},
        )
        found: dict[ChallengeKey, list[Contribution]] = {}
        for row in rows:
            found.setdefault((row.challenge_id, row.customer_id), []).append(
                Contribution(
                    source_id=row.source_key,
                    occurred_at=row.occurred_at,
                    amount=row.amount,
                    partner_id=row.partner_id,
                    categories=frozenset(row.categories),
                    refunded_share=refunded_share(row.total, row.refunded),
                )
            )
        return found

    async def complete_challenges(self, keys: Collection[ChallengeKey], at: datetime) -> None:
        if not keys:
            return
        ordered = sorted(keys)
        await self._conn.execute(
            _COMPLETE,
            {"challenges": [k for k, _ in ordered], "customers": [c for _, c in ordered], "at": at},
        )

    async def refund_contributions(self, refunded: Mapping[str, Decimal]) -> None:
        if not refunded:
            return
        ordered = sorted(refunded.items())
        await self._conn.execute(
            _REFUND_CONTRIBUTIONS,
            {"keys": [k for k, _ in ordered], "amounts": [a for _, a in ordered]},
        )

    async def add_badges(self, badges: Sequence[Badge]) -> set[tuple[str, str]]:
        if not badges:
            return set()
        table = tables.badges
        rows = [
            {
                "customer_id": b.customer_id,
                "badge": b.badge,
                "challenge_id": b.challenge_id,
                "earned_at": b.earned_at,
            }
            for b in badges
        ]
        return {(customer, badge) for customer, badge in await insert_many(self._conn, table, rows)}

    async def erase(self, customer_ids: Collection[str]) -> None:
        if not customer_ids:
            return
        ids = sorted(customer_ids)
        for table in _ERASED_FROM:
            await self._conn.execute(table.delete().where(table.c.customer_id.in_(ids)))

    async def note_birthdays(self, profiles: Mapping[str, ports.ProfileBirthday]) -> None:
        if not profiles:
            return
        ordered = sorted(profiles.items())
        await self._conn.execute(
            _NOTE_BIRTHDAYS,
            {
                "ids": [c for c, _ in ordered],
                "months": [p.birthday.month if p.birthday else None for _, p in ordered],
                "days": [p.birthday.day if p.birthday else None for _, p in ordered],
                "zones": [p.time_zone for _, p in ordered],
                "versions": [p.version for _, p in ordered],
            },
        )

    # Surprises: the statements are in `surprises.py`.

    async def surprises_in_force(self, since: datetime) -> list[SurpriseRule]:
        return await surprise_sql.surprises_in_force(self._conn, since)

    async def surprise_wins_of(self, keys: Collection[MemberKey]) -> dict[MemberKey, list[Win]]:
        return await surprise_sql.surprise_wins_of(self._conn, keys)

    async def lock_budgets(self, keys: Collection[BudgetKey]) -> dict[BudgetKey, int]:
        return await surprise_sql.lock_budgets(self._conn, keys)

    async def save_budgets(self, spent: Mapping[BudgetKey, int]) -> None:
        await surprise_sql.save_budgets(self._conn, spent)

    async def record_surprise_wins(self, wins: Sequence[ports.SurpriseWin]) -> set[tuple[str, str]]:
        return await surprise_sql.record_surprise_wins(self._conn, wins)

    async def refund_surprise_wins(
        self, refunded: Mapping[str, Decimal], at: datetime
    ) -> list[ports.SurpriseWin]:
        return await surprise_sql.refund_surprise_wins(self._conn, refunded, at)

    # Feedback: the statements are in `feedback.py`.

    async def note_feedback_erased(self, customer_ids: Collection[str], at: datetime) -> None:
        await feedback_sql.note_feedback_erased(self._conn, customer_ids, at)

    async def record_feedback(self, given: Sequence[Feedback]) -> set[str]:
        return await feedback_sql.record_feedback(self._conn, given)

    async def feedback_reward(self) -> FeedbackReward | None:
        return await feedback_sql.feedback_reward(self._conn)

    async def record_feedback_rewards(self, grants: Sequence[ports.FeedbackGrant]) -> set[str]:
        return await feedback_sql.record_feedback_rewards(self._conn, grants)


_LOCK_CARDS = sa.text(
    "SELECT c.card_id, c.customer_id, c.stamps, c.completed_count FROM stamp_cards AS c "
    "JOIN unnest(CAST(:cards AS text[]), CAST(:customers AS text[])) AS k(card_id, customer_id) "
    "USING (card_id, customer_id) ORDER BY c.card_id, c.customer_id FOR UPDATE OF c"
)
_SAVE_CARDS = sa.text(
    "UPDATE stamp_cards AS c SET stamps = v.stamps, completed_count = v.completed_count "
    "FROM unnest(CAST(:cards AS text[]), CAST(:customers AS text[]), CAST(:stamps AS int[]), "
    "CAST(:counts AS int[])) AS v(card_id, customer_id, stamps, completed_count) "
    "WHERE c.card_id = v.card_id AND c.customer_id = v.customer_id"
)
_SAVE_REFUNDED = sa.text(
    "UPDATE stamp_purchases AS p SET refunded = v.refunded "
    "FROM unnest(CAST(:cards AS text[]), CAST(:keys AS text[]), "
    "CAST(:refunded AS numeric[])) AS v(card_id, purchase_key, refunded) "
    "WHERE p.card_id = v.card_id AND p.purchase_key = v.purchase_key"
)
_LOCK_PROGRESS = sa.text(
    "SELECT p.challenge_id, p.customer_id, p.completed_at FROM challenge_progress AS p "
    "JOIN unnest(CAST(:challenges AS text[]), CAST(:customers AS text[])) "
    "AS k(challenge_id, customer_id) "
    "USING (challenge_id, customer_id) ORDER BY p.challenge_id, p.customer_id FOR UPDATE OF p"
)
_CONTRIBUTIONS = sa.text(
    "SELECT c.* FROM challenge_contributions AS c "
    "JOIN unnest(CAST(:challenges AS text[]), CAST(:customers AS text[])) "
    "AS k(challenge_id, customer_id) "
    "USING (challenge_id, customer_id) ORDER BY c.occurred_at, c.source_key"
)
_COMPLETE = sa.text(
    "UPDATE challenge_progress AS p SET completed_at = :at "
    "FROM unnest(CAST(:challenges AS text[]), CAST(:customers AS text[])) "
    "AS k(challenge_id, customer_id) "
    "WHERE p.challenge_id = k.challenge_id AND p.customer_id = k.customer_id"
)
# Refunds take progress back only until the challenge is completed.
_REFUND_CONTRIBUTIONS = sa.text(
    "UPDATE challenge_contributions AS c SET refunded = LEAST(c.total, c.refunded + v.amount) "
    "FROM unnest(CAST(:keys AS text[]), CAST(:amounts AS numeric[])) AS v(source_key, amount) "
    "WHERE c.source_key = v.source_key AND NOT EXISTS (SELECT 1 FROM challenge_progress AS p "
    "WHERE p.challenge_id = c.challenge_id AND p.customer_id = c.customer_id "
    "AND p.completed_at IS NOT NULL)"
)
_REVOKE = sa.text(
    "UPDATE stamp_completions AS s SET revoked_at = :at "
    "FROM unnest(CAST(:cards AS text[]), CAST(:customers AS text[]), CAST(:numbers AS int[])) "
    "AS k(card_id, customer_id, number) "
    "WHERE s.card_id = k.card_id AND s.customer_id = k.customer_id AND s.number = k.number "
    "AND s.revoked_at IS NULL RETURNING s.card_id, s.customer_id, s.number, s.grant_id"
)

_ENROL = sa.text(
    "INSERT INTO members (customer_id, enrolled_at, referred_by) "
    "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:ats AS timestamptz[]), "
    "CAST(:referrers AS text[])) "
    "ON CONFLICT (customer_id) DO UPDATE SET enrolled_at = EXCLUDED.enrolled_at, "
    "referred_by = COALESCE(members.referred_by, EXCLUDED.referred_by) "
    "RETURNING customer_id, referred_by, first_purchase_key, first_purchase_at, "
    "first_purchase_total"
)
# The first purchase stays the first: a member's row is updated only while it has none.
_FIRST_PURCHASES = sa.text(
    "INSERT INTO members (customer_id, first_purchase_key, first_purchase_at, "
    "first_purchase_total) "
    "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:keys AS text[]), "
    "CAST(:ats AS timestamptz[]), CAST(:totals AS numeric[])) "
    "ON CONFLICT (customer_id) DO UPDATE SET first_purchase_key = EXCLUDED.first_purchase_key, "
    "first_purchase_at = EXCLUDED.first_purchase_at, "
    "first_purchase_total = EXCLUDED.first_purchase_total "
    "WHERE members.first_purchase_key IS NULL "
    "RETURNING customer_id, referred_by, first_purchase_key, first_purchase_at, "
    "first_purchase_total"
)

# A member's birthday follows their latest profile: an older version (or an unversioned event
# once a versioned one was kept) changes nothing.
_NOTE_BIRTHDAYS = sa.text(
    "INSERT INTO members (customer_id, birthday_month, birthday_day, time_zone, "
    "profile_version) "
    "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:months AS smallint[]), "
    "CAST(:days AS smallint[]), CAST(:zones AS text[]), CAST(:versions AS bigint[])) "
    "ON CONFLICT (customer_id) DO UPDATE SET birthday_month = EXCLUDED.birthday_month, "
    "birthday_day = EXCLUDED.birthday_day, time_zone = EXCLUDED.time_zone, "
    "profile_version = EXCLUDED.profile_version "
    "WHERE members.profile_version IS NULL "
    "OR EXCLUDED.profile_version >= members.profile_version"
)

# A member's place in a segment follows the newest change (`Membership.rank`: the later
# changed_at, leaving first at the same instant); an older one read late changes nothing, and
# nothing is kept of a member erased (segment events are on a topic of their own, so one may
# be read after the erasure).
_NOTE_SEGMENTS = sa.text(
    "INSERT INTO segment_memberships AS s (customer_id, segment, member, changed_at) "
    "SELECT v.* FROM unnest(CAST(:ids AS text[]), CAST(:segments AS text[]), "
    "CAST(:members AS boolean[]), CAST(:ats AS timestamptz[])) "
    "AS v(customer_id, segment, member, changed_at) "
    "WHERE NOT EXISTS (SELECT 1 FROM feedback_erased_members AS e "
    "WHERE e.customer_id = v.customer_id) "
    "ON CONFLICT (customer_id, segment) DO UPDATE SET member = EXCLUDED.member, "
    "changed_at = EXCLUDED.changed_at "
    "WHERE (EXCLUDED.changed_at, NOT EXCLUDED.member) > (s.changed_at, NOT s.member)"
)
