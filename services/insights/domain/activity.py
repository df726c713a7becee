"""What a member's purchases say, as of an instant: the figures every rule reads. The database
computes them for a set of members in one statement (adapters/repositories/common.py); this is
the same definition in Python, for the unit tests' fake and as the reference the SQL is tested
against (tests/integration/insights/test_activity_sql.py)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from services.insights.domain.model import ZERO, Activity, Purchase

DAY = timedelta(days=1)


def activity_of(
    purchases: Sequence[Purchase], as_of: datetime, window: timedelta, lapse: timedelta
) -> Activity:
    """Over the purchases made by `as_of` and not wholly refunded by then: the last one, the
    latest that came `lapse` or more after the one before it, and in the window before
    `as_of` their number, net amount, how many a campaign boosted, the usual place and how
    regular the gaps between them are."""
    kept = sorted(
        (p for p in purchases if p.occurred_at <= as_of and p.kept),
        key=lambda p: (p.occurred_at, p.key),
    )
    if not kept:
        return Activity()
    recent = [p for p in kept if p.occurred_at > as_of - window]
    returned = [b.occurred_at for a, b in pairwise(kept) if b.occurred_at - a.occurred_at >= lapse]
    place, count = usual_place(recent)
    return Activity(
        last_purchase_at=kept[-1].occurred_at,
        returned_at=returned[-1] if returned else None,
        frequency=len(recent),
        monetary=sum((p.net for p in recent), ZERO),
        campaign_purchases=sum(1 for p in recent if p.in_campaign),
        usual_place=place,
        usual_place_purchases=count,
        rhythm_variation=rhythm_variation(recent),
    )


def usual_place(recent: Sequence[Purchase]) -> tuple[str | None, int]:
    """The store (of a partner), or else the partner, the member buys at most: ties go to the
    greatest name, as the SQL's ORDER BY n DESC, place DESC."""
    stores = Counter(f"store {p.partner_id}/{p.store_id}" for p in recent if p.store_id)
    partners = Counter(f"partner {p.partner_id}" for p in recent)
    places = [*stores.items(), *partners.items()]
    if not places:
        return None, 0
    return max(places, key=lambda item: (item[1], item[0]))


def rhythm_variation(recent: Sequence[Purchase]) -> Decimal:
    """The coefficient of variation of the days between purchases (population standard
    deviation over the mean, 4 places; 0 with fewer than two gaps: like clockwork)."""
    gaps = [(b.occurred_at - a.occurred_at) / DAY for a, b in pairwise(recent)]
    return variation(len(gaps), _mean(gaps), _pstdev(gaps))


def variation(gaps: int, mean: float | None, stddev: float | None) -> Decimal:
    if gaps < 2 or not mean or stddev is None:
        return Decimal(0)
    return Decimal(str(round(stddev / mean, 4)))


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _pstdev(values: Sequence[float]) -> float | None:
    mean = _mean(values)
    if mean is None:
        return None
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
