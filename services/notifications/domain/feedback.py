"""The invitation to give feedback after a purchase (product.md §8): one
`feedback_request` email per purchase, a configurable time after it
(`FEDELTA_NOTIFICATIONS_FEEDBACK_REQUEST_DELAY_HOURS`; 0, the default, invites no one). It is
scheduled when the purchase is read, to go out at the purchase's time plus the delay (at once
when that is past), in the bulk lane: the dispatcher holds it for quiet hours and the daily cap
as any other message, and suppresses it if the member is erased or withdraws consent first.
Email only: an SMS a day after every purchase would harass. Pure: no I/O."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.messaging.events import derived_event_id

FEEDBACK_REQUEST = "feedback_request"
MAX_DELAY_HOURS = 24 * 30


def feedback_request_id(partner_id: str, purchase_id: str) -> str:
    """From the purchase itself, not the event that told of it: once per purchase."""
    return derived_event_id(f"purchase/{partner_id}:{purchase_id}", FEEDBACK_REQUEST)


def request_at(occurred_at: datetime, now: datetime, delay: timedelta) -> datetime:
    """When the invitation goes out: the delay after the purchase, never before now."""
    return max(now, occurred_at + delay)


def purchased_on(occurred_at: datetime, zone: ZoneInfo) -> date:
    """The purchase's day where the member lives (what the message names)."""
    return occurred_at.astimezone(zone).date()
