"""The coalition's settlement: who owes whom for points issued by one partner and spent at
another. Pure Python: the sums come from the repository, the arithmetic is here.

For a period, each ordered pair (issuer, honourer) of different parties has the points spent
in it at the honourer out of lots the issuer issued, net of what was given back in it; they
are worth `points * point_value` in the program's currency, which the issuer owes the
honourer (a negative figure: more was given back in the period than spent, the honourer owes
it back). Each party's `net` is what it is owed less what it owes; across parties the nets
add up to exactly zero, as every amount is counted once owed and once due. Points issued and
spent at the same partner settle nothing. The program itself (staff adjustments, an
administrator's redemption, entries older than the partners on the ledger) is the party
`PROGRAM`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

PROGRAM = "program"


@dataclass(frozen=True)
class Pair:
    issued_by: str
    honoured_by: str
    points: int
    value: Decimal


@dataclass(frozen=True)
class Position:
    partner_id: str
    owes: Decimal
    is_owed: Decimal

    @property
    def net(self) -> Decimal:
        return self.is_owed - self.owes


@dataclass(frozen=True)
class Settlement:
    point_value: Decimal
    pairs: list[Pair]
    partners: list[Position]


def party(partner_id: str | None) -> str:
    return PROGRAM if partner_id is None else partner_id


def settle(spent: Mapping[tuple[str | None, str | None], int], point_value: Decimal) -> Settlement:
    """The pairs, in (issuer, honourer) order, and every party's position, in party order,
    from the points spent by (issuing, honouring) partner."""
    points: dict[tuple[str, str], int] = {}
    for (issuer, honourer), spent_points in spent.items():
        key = (party(issuer), party(honourer))
        if key[0] != key[1]:
            points[key] = points.get(key, 0) + spent_points
    pairs = [
        Pair(issuer, honourer, n, n * point_value)
        for (issuer, honourer), n in sorted(points.items())
        if n != 0
    ]
    zero = 0 * point_value  # written to point_value's places: "0.00" beside "1.50"
    owes: dict[str, Decimal] = {}
    is_owed: dict[str, Decimal] = {}
    for pair in pairs:
        owes[pair.issued_by] = owes.get(pair.issued_by, zero) + pair.value
        is_owed[pair.honoured_by] = is_owed.get(pair.honoured_by, zero) + pair.value
    parties = sorted(owes.keys() | is_owed.keys())
    return Settlement(
        point_value=point_value,
        pairs=pairs,
        partners=[Position(p, owes.get(p, zero), is_owed.get(p, zero)) for p in parties],
    )


MAX_PERIOD = timedelta(days=366)


def period_flaw(start: datetime, end: datetime) -> str | None:
    """What makes [start, end) no period to settle, or None."""
    if start >= end:
        return "from must be before to"
    if end - start > MAX_PERIOD:
        return f"a period is at most {MAX_PERIOD.days} days"
    return None
