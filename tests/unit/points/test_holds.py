from datetime import UTC, datetime, timedelta

import pytest

from services.points.domain.holds import (
    Hold,
    HoldAction,
    HoldSettled,
    HoldStatus,
    lapse_all,
    settle,
)
from services.points.domain.lots import Allocation
from services.points.domain.model import EntryKind

NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)


def hold(status: HoldStatus = HoldStatus.HELD) -> Hold:
    return Hold("h1", "c1", 40, "coffee", NOW, NOW + timedelta(minutes=15), status)


def test_a_capture_makes_the_hold_final_and_keeps_its_points_spent() -> None:
    done = settle(hold(), HoldAction.CAPTURE, NOW + timedelta(minutes=5))
    assert (done.hold.status, done.gives_back, done.changed) == (HoldStatus.CAPTURED, False, True)
    assert done.hold.settled_at == NOW + timedelta(minutes=5)


@pytest.mark.parametrize("action", [HoldAction.VOID, HoldAction.LAPSE])
def test_a_void_or_a_lapse_gives_the_points_back(action: HoldAction) -> None:
    done = settle(hold(), action, NOW + timedelta(minutes=15))
    assert done.gives_back and done.changed
    expected = {HoldAction.VOID: HoldStatus.VOIDED, HoldAction.LAPSE: HoldStatus.LAPSED}
    assert done.hold.status is expected[action]


def test_the_same_action_again_changes_nothing() -> None:
    for status, action in [
        (HoldStatus.CAPTURED, HoldAction.CAPTURE),
        (HoldStatus.VOIDED, HoldAction.VOID),
        (HoldStatus.LAPSED, HoldAction.VOID),
    ]:
        done = settle(hold(status), action, NOW)
        assert not done.changed and not done.gives_back


def test_a_timed_out_hold_cannot_be_captured() -> None:
    with pytest.raises(HoldSettled) as refused:
        settle(hold(), HoldAction.CAPTURE, NOW + timedelta(minutes=15))
    assert refused.value.hold.status is HoldStatus.LAPSED


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (HoldStatus.CAPTURED, HoldAction.VOID),
        (HoldStatus.VOIDED, HoldAction.CAPTURE),
        (HoldStatus.LAPSED, HoldAction.CAPTURE),
    ],
)
def test_a_settled_hold_refuses_the_other_action(status: HoldStatus, action: HoldAction) -> None:
    with pytest.raises(HoldSettled):
        settle(hold(status), action, NOW)


def test_a_hold_does_not_lapse_before_its_timeout() -> None:
    with pytest.raises(ValueError, match="not timed out"):
        settle(hold(), HoldAction.LAPSE, NOW + timedelta(minutes=14))


def test_lapsing_gives_every_timed_out_hold_back_to_its_lots() -> None:
    held, settled = hold(), hold(HoldStatus.CAPTURED)
    allocations = [Allocation("h1", "lot-a", 30), Allocation("h1", "lot-b", 10)]
    at = NOW + timedelta(minutes=15)
    lapsed, releases = lapse_all([held, settled], allocations, at)
    assert [h.status for h in lapsed] == [HoldStatus.LAPSED]
    ((entry, given_back),) = releases
    assert (entry.entry_id, entry.points, entry.kind) == ("h1:lapse", 40, EntryKind.RELEASE)
    assert given_back == [
        Allocation("h1:lapse", "lot-a", -30),
        Allocation("h1:lapse", "lot-b", -10),
    ]
    assert lapse_all([lapsed[0]], allocations, at) == ([], [])
