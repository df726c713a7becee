"""Holds: points a terminal reserves before a payment completes. Pure Python, time passed in.

A hold draws on the lots when it is placed (so nothing else can spend its points); a capture
makes it final, a void or a lapse gives its points back to the lots they came from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from services.points.domain.lots import Allocation, release
from services.points.domain.model import LedgerEntry


class HoldStatus(StrEnum):
    HELD = "held"
    CAPTURED = "captured"
    VOIDED = "voided"
    LAPSED = "lapsed"


class HoldAction(StrEnum):
    CAPTURE = "capture"
    VOID = "void"
    LAPSE = "lapse"


_OUTCOME = {
    HoldAction.CAPTURE: HoldStatus.CAPTURED,
    HoldAction.VOID: HoldStatus.VOIDED,
    HoldAction.LAPSE: HoldStatus.LAPSED,
}


@dataclass(frozen=True)
class Hold:
    hold_id: str
    customer_id: str
    points: int
    reward: str
    created_at: datetime
    expires_at: datetime
    status: HoldStatus = HoldStatus.HELD
    settled_at: datetime | None = None
    # The partner (and store) whose till placed it; none: an administrator (migration 0007).
    partner_id: str | None = None
    store_id: str | None = None


class HoldSettled(Exception):
    """The hold was settled otherwise already: it cannot be captured or voided now."""

    def __init__(self, hold: Hold, action: HoldAction) -> None:
        super().__init__(f"hold {hold.hold_id} is {hold.status.value}: it cannot {action.value}")
        self.hold = hold
        self.action = action


@dataclass(frozen=True)
class Settlement:
    hold: Hold
    gives_back: bool  # the hold's points go back to its lots
    changed: bool  # False: the same action was taken before, nothing to do again


def settle(hold: Hold, action: HoldAction, now: datetime) -> Settlement:
    """What `action` does to `hold` at `now`. Taking the action it already had changes
    nothing (a retried capture or void answers as the first did); a hold past its timeout
    can no longer be captured, only voided or lapsed."""
    outcome = _OUTCOME[action]
    if hold.status is outcome:
        return Settlement(hold, gives_back=False, changed=False)
    if hold.status is not HoldStatus.HELD:
        if action is HoldAction.VOID and hold.status is HoldStatus.LAPSED:
            return Settlement(hold, gives_back=False, changed=False)  # its points are back
        raise HoldSettled(hold, action)
    if action is HoldAction.CAPTURE and now >= hold.expires_at:
        raise HoldSettled(replace(hold, status=HoldStatus.LAPSED), action)
    if action is HoldAction.LAPSE and now < hold.expires_at:
        raise ValueError(f"hold {hold.hold_id} has not timed out")
    settled = replace(hold, status=outcome, settled_at=now)
    return Settlement(settled, gives_back=outcome is not HoldStatus.CAPTURED, changed=True)


def lapse_all(
    timed_out: Sequence[Hold], allocations: Sequence[Allocation], as_of: datetime
) -> tuple[list[Hold], list[tuple[LedgerEntry, list[Allocation]]]]:
    """Every hold still held at its timeout by `as_of`, lapsed, and the releases that give
    their points back to the lots they came from; ids derived from the hold, so a lapse is
    recorded once however often it is worked out."""
    lapsed: list[Hold] = []
    releases: list[tuple[LedgerEntry, list[Allocation]]] = []
    for hold in timed_out:
        if hold.status is not HoldStatus.HELD or hold.expires_at > as_of:
            continue  # settled otherwise meanwhile, or not timed out yet
        done = settle(hold, HoldAction.LAPSE, as_of)
        lapsed.append(done.hold)
        entry, given = release(
            hold.hold_id,
            hold.customer_id,
            allocations,
            entry_id=f"{hold.hold_id}:{HoldAction.LAPSE.value}",
            reason=f"hold {HoldAction.LAPSE.value}",
            now=as_of,
        )
        releases.append((of_the_till(entry, hold), given))
    return lapsed, releases


def of_the_till(release_entry: LedgerEntry, hold: Hold) -> LedgerEntry:
    """A hold's release names the partner and store its hold named, so the two net out."""
    return replace(release_entry, partner_id=hold.partner_id, store_id=hold.store_id)
