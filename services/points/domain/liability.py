"""The points liability: what each partner owes in points, and how its points moved; beside
it, the points each partner honoured (spent at its tills or on its rewards). Pure Python: the
sums come from the repository, the arithmetic is here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from services.points.domain.settlement import party

TOTAL = "total"


@dataclass(frozen=True)
class Liability:
    """A partner's points as of an instant: issued in lots, then spent (redemptions, holds,
    negative adjustments), expired and reversed (refunds) out of those lots; and the debt its
    refunds left, what customers owe back (later earnings repay it before anything else)."""

    partner_id: str
    issued: int
    spent: int
    expired: int
    reversed: int
    debt: int = 0
    honoured: int = 0  # spent at this partner, whoever issued the points

    @property
    def in_lots(self) -> int:
        """Available and pending: what was issued and is still in the lots."""
        return self.issued - self.spent - self.expired - self.reversed

    @property
    def outstanding(self) -> int:
        """What the partner owes in points: what is in the lots, less the debt customers
        owe back, which their next earnings repay."""
        return self.in_lots - self.debt


def total_of(partners: Sequence[Liability]) -> Liability:
    return Liability(
        partner_id=TOTAL,
        issued=sum(p.issued for p in partners),
        spent=sum(p.spent for p in partners),
        expired=sum(p.expired for p in partners),
        reversed=sum(p.reversed for p in partners),
        debt=sum(p.debt for p in partners),
        honoured=sum(p.honoured for p in partners),
    )


def with_honoured(
    partners: Sequence[Liability], honoured: Mapping[str | None, int]
) -> list[Liability]:
    """Each partner's liability with the points it honoured, by partner id; a partner that
    honoured points and issued none is there too (the program, for an administrator's
    redemptions, is `settlement.PROGRAM`)."""
    by_partner = {p.partner_id: p for p in partners}
    for partner_id, points in honoured.items():
        name = party(partner_id)
        current = by_partner.get(name, Liability(name, 0, 0, 0, 0))
        by_partner[name] = replace(current, honoured=current.honoured + points)
    return [by_partner[name] for name in sorted(by_partner)]
