"""The member's engagement: stamp cards (drawn as stamps), challenges with their progress, and
badges, from the engagement service. A member it does not know yet has none of them."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from services.web.ports import Services
from services.web.usecases.wallet import Reading

# A card drawn stamp by stamp up to this many; a longer one is told by its text and a bar.
MOST_STAMPS_DRAWN = 30


@dataclass(frozen=True)
class StampCard:
    name: str
    stamps: int
    required: int
    completed_count: int
    drawn: list[bool] | None  # filled or empty, in order; None when too many to draw
    reward: dict[str, Any]
    ends_at: str | None


@dataclass(frozen=True)
class Challenge:
    name: str
    kind: str
    progress: Decimal
    target: Decimal
    completed_at: str | None
    ends_at: str | None
    badge: str | None


@dataclass(frozen=True)
class CardsPage:
    stamp_cards: list[StampCard]
    challenges: list[Challenge]
    badges: list[dict[str, Any]]
    unavailable: list[str]


async def cards_page(services: Services, actor: str, customer_id: str) -> CardsPage:
    reading = Reading(services, actor)
    base = f"/v1/customers/{customer_id}"
    cards = await reading.body("engagement", f"{base}/stamp-cards")
    challenges = await reading.body("engagement", f"{base}/challenges")
    badges = await reading.body("engagement", f"{base}/badges")
    return CardsPage(
        stamp_cards=[_card(c) for c in _items(cards)],
        challenges=[_challenge(c) for c in _items(challenges)],
        badges=_items(badges),
        unavailable=reading.unavailable,
    )


def _items(body: Any) -> list[dict[str, Any]]:
    items = (body or {}).get("items") if isinstance(body, dict) else None
    return [item for item in items or [] if isinstance(item, dict)]


def _card(card: dict[str, Any]) -> StampCard:
    required = max(int(card.get("stamps_required") or 1), 1)
    stamps = min(max(int(card.get("stamps") or 0), 0), required)
    drawn = [i < stamps for i in range(required)] if required <= MOST_STAMPS_DRAWN else None
    return StampCard(
        name=str(card.get("name", "")),
        stamps=stamps,
        required=required,
        completed_count=int(card.get("completed_count") or 0),
        drawn=drawn,
        reward=dict(card.get("reward") or {}),
        ends_at=card.get("ends_at"),
    )


def _amount(value: object) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)


def _challenge(challenge: dict[str, Any]) -> Challenge:
    goal = challenge.get("goal") or {}
    target = _amount(challenge.get("target", goal.get("target", 0)))
    return Challenge(
        name=str(challenge.get("name", "")),
        kind=str(goal.get("kind", "")),
        progress=min(_amount(challenge.get("progress", 0)), target),
        target=target,
        completed_at=challenge.get("completed_at"),
        ends_at=challenge.get("ends_at"),
        badge=challenge.get("badge"),
    )
