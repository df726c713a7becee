"""The console's member search and a member's 360° page: what each service knows of them, each
service's part read on its own (one away: that part says so, the rest shows)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.web.ports import Services, ServiceUnavailable
from shared.bounds import EMAIL_PATTERN, IDENTIFIER_PATTERN, MAX_ID_LENGTH

MAX_EMAIL_LENGTH = 254
LEDGER_ENTRIES = 20
MESSAGES = 20


@dataclass(frozen=True)
class Search:
    query: str
    customer_ids: tuple[str, ...] = ()
    # A message key: the query is neither an id nor an address.
    problem: str | None = None
    # The service that did not answer, when one did not.
    unavailable: str | None = None


async def search_members(services: Services, actor: str, query: str) -> Search:
    """By customer id (points knows them) or by email address (notifications' contacts)."""
    query = query.strip()
    if not query:
        return Search(query)
    try:
        if "@" in query:
            return await _by_email(services, actor, query)
        return await _by_id(services, actor, query)
    except ServiceUnavailable as away:
        return Search(query, unavailable=away.service)


async def _by_email(services: Services, actor: str, email: str) -> Search:
    if len(email) > MAX_EMAIL_LENGTH or not re.fullmatch(EMAIL_PATTERN, email):
        return Search(email, problem="console.search.invalid")
    found = await services.get(
        "notifications", "/v1/contacts", actor=actor, params={"email": email}
    )
    body = found.body if found.ok and isinstance(found.body, dict) else {}
    ids = [str(each) for each in body.get("customer_ids", [])]
    return Search(email, tuple(ids))


async def _by_id(services: Services, actor: str, customer_id: str) -> Search:
    if not known_id(customer_id):
        return Search(customer_id, problem="console.search.invalid")
    found = await services.get("points", f"/v1/customers/{customer_id}/balance", actor=actor)
    return Search(customer_id, (customer_id,) if found.ok else ())


def known_id(customer_id: str) -> bool:
    """Whether it can be a customer id at all (what every service takes in a path)."""
    return len(customer_id) <= MAX_ID_LENGTH and bool(re.fullmatch(IDENTIFIER_PATTERN, customer_id))


@dataclass(frozen=True)
class Part:
    """One service's part of the page: each read's body (None when it found nothing), or
    `unavailable` when the service did not answer."""

    service: str
    found: Mapping[str, Any] = field(default_factory=dict)
    unavailable: bool = False

    def get(self, name: str) -> Any:
        return self.found.get(name)

    def items(self, name: str, key: str = "items") -> list[Any]:
        body = self.found.get(name)
        items = body.get(key) if isinstance(body, dict) else None
        return items if isinstance(items, list) else []


@dataclass(frozen=True)
class MemberView:
    customer_id: str
    points: Part
    tiers: Part
    notifications: Part
    engagement: Part
    insights: Part

    @property
    def known(self) -> bool:
        """False only when the services that answered all said they do not know the member."""
        reads = ((self.points, "balance"), (self.tiers, "tier"), (self.insights, "insights"))
        heard = [(part, name) for part, name in reads if not part.unavailable]
        return not heard or any(part.get(name) is not None for part, name in heard)


async def member_view(services: Services, actor: str, customer_id: str) -> MemberView:
    """Everything the console shows of one member, the services asked at once."""
    member = f"/v1/customers/{customer_id}"

    def part(service: str, reads: Mapping[str, tuple[str, Mapping[str, str] | None]]) -> Any:
        return _part(services, actor, service, reads)

    points, tiers, notifications, engagement, insights = await asyncio.gather(
        part(
            "points",
            {
                "balance": (f"{member}/balance", None),
                "ledger": (f"{member}/ledger", {"limit": str(LEDGER_ENTRIES)}),
                "offers": (f"{member}/offers", None),
            },
        ),
        part(
            "tiers", {"tier": (f"{member}/tier", None), "history": (f"{member}/tier/history", None)}
        ),
        part("notifications", {"log": (f"{member}/notifications", {"limit": str(MESSAGES)})}),
        part(
            "engagement",
            {
                "stamp_cards": (f"{member}/stamp-cards", None),
                "challenges": (f"{member}/challenges", None),
                "badges": (f"{member}/badges", None),
            },
        ),
        part("insights", {"insights": (f"{member}/insights", None)}),
    )
    return MemberView(customer_id, points, tiers, notifications, engagement, insights)


async def _part(
    services: Services,
    actor: str,
    service: str,
    reads: Mapping[str, tuple[str, Mapping[str, str] | None]],
) -> Part:
    try:
        answers = await asyncio.gather(
            *(
                services.get(service, path, actor=actor, params=params)
                for path, params in reads.values()
            )
        )
    except ServiceUnavailable:
        return Part(service, unavailable=True)
    found = {
        name: answer.body if answer.ok else None
        for name, answer in zip(reads, answers, strict=True)
    }
    return Part(service, found)
