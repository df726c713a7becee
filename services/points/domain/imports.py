"""An imported member's opening balance (`fedelta import members`, product §11): the lots the
program they come from held, each a bonus lot of its own. Pure Python: no I/O, time passed
in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.points.domain.model import EntryKind, LedgerEntry, Program

IMPORT = "import"  # the lots' reason and rule


@dataclass(frozen=True)
class OpeningLot:
    """A lot as the import carries it; `expires_at` None: the program's validity from the
    import on. `entry_id` is the ledger's id for it (derived from the import by the caller,
    so a second delivery finds it)."""

    entry_id: str
    points: int
    expires_at: datetime | None = None


def opening_lots(
    program: Program,
    *,
    customer_id: str,
    partner_id: str,
    imported_at: datetime,
    lots: Sequence[OpeningLot],
    now: datetime,
) -> list[LedgerEntry]:
    """The bonus lots an import gives, in the import's order: available at once, issued by
    the importing partner, each expiring when it said (or the program's validity from
    `imported_at`). A lot already expired at `now` gives nothing: its points could never be
    spent here."""
    entries: list[LedgerEntry] = []
    for lot in lots:
        expires_at = lot.expires_at or program.expiry_for(imported_at)
        if lot.points <= 0 or expires_at <= now:
            continue
        entries.append(
            LedgerEntry(
                entry_id=lot.entry_id,
                customer_id=customer_id,
                kind=EntryKind.BONUS,
                points=lot.points,
                reason=IMPORT,
                occurred_at=imported_at,
                available_at=imported_at,
                expires_at=expires_at,
                rule_ids=(IMPORT,),
                partner_id=partner_id,
            )
        )
    return entries
