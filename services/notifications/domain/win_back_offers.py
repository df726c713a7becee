"""The win-back that states an offer (issue 21). Pure: no I/O, time passed in.

When a member lapses and the program has a win-back incentive, points grants them a personal
offer (`fedelta.points.offer_granted.v1`: a multiplier and/or a bonus per purchase, for
[starts_at, ends_at)) and notifications tells them in `win_back_offer`, on every channel,
under the never-harass rules of every message. One lapse, one win-back: the offer's message
marks the lapse it is for as won back, as the `win-back` job marks the lapses it tells of, so
the job's plain `win_back` does not follow it; a plain one still waiting is suppressed, since
the offer's says more. A plain one already sent does not stop the offer's: the member must
learn of the gift.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

# Why a plain win-back still waiting when the offer arrives is not sent.
SUPERSEDED = "superseded by the win-back offer"


def multiplier_text(multiplier: Decimal) -> str:
    """The multiplier as the message stores it: plain digits without trailing zeros
    ("2", "1.5"), so that the templates tell double points from the others."""
    return format(multiplier.normalize(), "f")


def last_day(ends_at: datetime, zone: ZoneInfo) -> str:
    """The customer's last local day of an offer ending (exclusively) at `ends_at`: an offer
    ending at local midnight lasts until the day before, which is the day the message names."""
    return (ends_at - timedelta(microseconds=1)).astimezone(zone).date().isoformat()


def offer_params(
    *,
    offer_id: str,
    name: str,
    multiplier: Decimal | None,
    bonus: int | None,
    starts_at: datetime,
    ends_at: datetime,
    zone: ZoneInfo,
) -> dict[str, Any]:
    """What a `win_back_offer` stores: the offer (only what it gives: `multiplier` and/or
    `bonus`), its instants in UTC (the message is stale once `ends_at` is past) and the
    last local day it names, in the customer's time zone when the offer arrived."""
    params: dict[str, Any] = {
        "offer_id": offer_id,
        "name": name,
        "starts_at": starts_at.astimezone(UTC).isoformat(),
        "ends_at": ends_at.astimezone(UTC).isoformat(),
        "ends_on": last_day(ends_at, zone),
    }
    if multiplier is not None:
        params["multiplier"] = multiplier_text(multiplier)
    if bonus is not None:
        params["bonus"] = bonus
    return params
