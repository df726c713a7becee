"""The points liability: what each partner owes in points, and how its points moved. Pure
Python: the sums come from the repository, the arithmetic is here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    )
