"""The member's points history: their ledger, newest first, a page at a time (points' cursor
leads to older entries)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.web.ports import Services
from services.web.usecases.wallet import Reading

PAGE_SIZE = 20
# The ledger's kinds the page names (points' EntryKind); another is shown as "other".
KINDS = ("earn", "bonus", "redeem", "hold", "release", "expire", "adjust", "held", "reverse")


@dataclass(frozen=True)
class HistoryPage:
    entries: list[dict[str, Any]]
    next_cursor: str | None
    first_page: bool
    unavailable: list[str]


async def history_page(
    services: Services, actor: str, customer_id: str, cursor: str | None
) -> HistoryPage:
    reading = Reading(services, actor)
    params = {"limit": str(PAGE_SIZE)}
    if cursor:
        params["cursor"] = cursor
    body = await reading.body("points", f"/v1/customers/{customer_id}/ledger", params)
    entries = [e for e in (body or {}).get("entries") or [] if isinstance(e, dict)]
    for entry in entries:
        entry["kind"] = entry.get("kind") if entry.get("kind") in KINDS else "other"
    return HistoryPage(
        entries=entries,
        next_cursor=(body or {}).get("next_cursor"),
        first_page=cursor is None,
        unavailable=reading.unavailable,
    )
