"""The member wallet's home: the balance (available, pending, debt, what expires next), the
tier with the progress to the next and what keeps it at the review, and the personal offers
running. Each part comes from one service; a service away leaves its part out, named in a
notice, and the rest of the page stands. Always the signed-in member's own: the customer id
comes from the session."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from services.web.ports import Services, ServiceUnavailable

# The routes a tier is reached or kept by: what the member has, and what is still missing.
ROUTES = (
    ("amount", "qualifying_spend", "amount_to_next_tier", "amount_to_keep_tier"),
    ("referrals", "qualifying_referrals", "referrals_to_next_tier", "referrals_to_keep_tier"),
    ("visits", "qualifying_visits", "visits_to_next_tier", "visits_to_keep_tier"),
)


@dataclass
class Reading:
    """Reads for one page: a body for a 2xx answer, None for any other, and the services that
    did not answer, for the page's notice."""

    services: Services
    actor: str
    unavailable: list[str] = field(default_factory=list)

    async def body(
        self, service: str, path: str, params: Mapping[str, str] | None = None
    ) -> Any | None:
        try:
            answer = await self.services.get(service, path, actor=self.actor, params=params)
        except ServiceUnavailable:
            if service not in self.unavailable:
                self.unavailable.append(service)
            return None
        return answer.body if answer.ok else None


@dataclass(frozen=True)
class Progress:
    """One route to the next tier: `value` of `maximum` (for a <progress>), `missing` to go."""

    route: str
    value: Decimal
    maximum: Decimal
    missing: Decimal


@dataclass(frozen=True)
class Keeping:
    """What the member still lacks, per route, to keep their tier at the review."""

    route: str
    missing: Decimal


@dataclass(frozen=True)
class TierView:
    name: str
    next_tier: str | None
    next_match: str  # any: one route reaches it; all: every route must be met
    progress: list[Progress]
    review_at: str
    keeping: list[Keeping]
    kept: bool | None  # None: the tier has no route to keep (the entry tier)


@dataclass(frozen=True)
class WalletHome:
    balance: dict[str, Any] | None
    next_expiry: dict[str, Any] | None
    tier: TierView | None
    currency: str
    offers: list[dict[str, Any]]
    unavailable: list[str]


async def wallet_home(services: Services, actor: str, customer_id: str) -> WalletHome:
    reading = Reading(services, actor)
    balance = await reading.body("points", f"/v1/customers/{customer_id}/balance")
    offers = await reading.body("points", f"/v1/customers/{customer_id}/offers")
    tier = await reading.body("tiers", f"/v1/customers/{customer_id}/tier")
    program = await reading.body("tiers", "/v1/tiers") if tier else None
    expiries = (balance or {}).get("next_expiries") or []
    return WalletHome(
        balance=balance,
        next_expiry=min(expiries, key=lambda e: str(e["expires_at"])) if expiries else None,
        tier=tier_view(tier) if tier else None,
        currency=str((program or {}).get("currency") or ""),
        offers=list((offers or {}).get("items") or []),
        unavailable=reading.unavailable,
    )


def _decimal(value: object) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def tier_view(tier: Mapping[str, Any]) -> TierView:
    """The tiers service's answer as the page shows it: a bar per route to the next tier (what
    the member has of what it takes) and what keeping the current tier still needs."""
    progress: list[Progress] = []
    keeping: list[Keeping] = []
    for route, have_field, next_field, keep_field in ROUTES:
        have = _decimal(tier.get(have_field)) or Decimal(0)
        to_next = _decimal(tier.get(next_field))
        if tier.get("next_tier") and to_next is not None:
            progress.append(Progress(route, have, have + to_next, to_next))
        to_keep = _decimal(tier.get(keep_field))
        if to_keep is not None:
            keeping.append(Keeping(route, to_keep))
    kept: bool | None = None
    if keeping:
        met = [k.missing <= 0 for k in keeping]
        kept = all(met) if tier.get("tier_match") == "all" else any(met)
    return TierView(
        name=str(tier.get("tier", "")),
        next_tier=tier.get("next_tier"),
        next_match=str(tier.get("next_tier_match") or "any"),
        progress=progress,
        review_at=str(tier.get("review_at", "")),
        keeping=keeping,
        kept=kept,
    )
