"""The calendar-year basis: a year's spend qualifies until the end of the next year, years
begin and end in the program's time zone, and a refund lowers its purchase's year."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from services.tiers.domain.model import (
    CustomerTier,
    Program,
    QualifyingActivity,
    SpendBasis,
    SpendHistory,
    new_customer,
    qualifying_spend,
    review_due,
)
from services.tiers.handlers import Context, apply_batch
from shared.messaging.outbox import CollectingSink
from tests.support.fakes.tiers import FakeTiers
from tests.unit.tiers.test_handlers import enrolled, purchase, refund

HELSINKI = ZoneInfo("Europe/Helsinki")
PROGRAM = Program(basis=SpendBasis.CALENDAR_YEAR, time_zone="Europe/Helsinki")
# 23:30 on 31 December in Helsinki is 21:30 UTC: still 2025 there and in UTC.
LAST_HALF_HOUR_OF_2025 = datetime(2025, 12, 31, 23, 30, tzinfo=HELSINKI)
# 00:30 on 1 January in Helsinki is 22:30 UTC on 31 December: 2026 for the program.
FIRST_HALF_HOUR_OF_2026 = datetime(2026, 1, 1, 0, 30, tzinfo=HELSINKI)
END_OF_2026 = datetime(2027, 1, 1, tzinfo=HELSINKI)


def spend(
    amount: str, at: datetime, activity_id: str, attributed_at: datetime | None = None
) -> QualifyingActivity:
    return QualifyingActivity(activity_id, "c1", Decimal(amount), at, attributed_at)


def test_years_begin_at_midnight_in_the_program_time_zone() -> None:
    assert FIRST_HALF_HOUR_OF_2026.astimezone(UTC).year == 2025  # still 2025 in UTC
    assert PROGRAM.year_of(LAST_HALF_HOUR_OF_2025) == 2025
    assert PROGRAM.year_of(FIRST_HALF_HOUR_OF_2026) == 2026
    assert PROGRAM.start_of_year(2026) == datetime(2025, 12, 31, 22, 0, tzinfo=UTC)
    # Under UTC the same instant is still 2025: the time zone decides.
    assert Program(basis=SpendBasis.CALENDAR_YEAR).year_of(FIRST_HALF_HOUR_OF_2026) == 2025


def test_a_purchase_at_23_30_on_31_december_qualifies_until_the_end_of_the_next_year() -> None:
    activities = [spend("600", LAST_HALF_HOUR_OF_2025, "p1")]
    assert qualifying_spend(PROGRAM, activities, LAST_HALF_HOUR_OF_2025) == Decimal(600)
    assert qualifying_spend(PROGRAM, activities, FIRST_HALF_HOUR_OF_2026) == Decimal(600)
    last_instant_of_2026 = END_OF_2026 - timedelta(microseconds=1)
    assert qualifying_spend(PROGRAM, activities, last_instant_of_2026) == Decimal(600)
    assert qualifying_spend(PROGRAM, activities, END_OF_2026) == Decimal(0)
    assert PROGRAM.earliest_counted(last_instant_of_2026) == PROGRAM.start_of_year(2025)


def test_a_purchase_at_00_30_on_1_january_counts_in_the_new_year_only() -> None:
    activities = [spend("600", FIRST_HALF_HOUR_OF_2026, "p1")]
    assert qualifying_spend(PROGRAM, activities, END_OF_2026) == Decimal(600)
    end_of_2027 = datetime(2028, 1, 1, tzinfo=HELSINKI)
    assert qualifying_spend(PROGRAM, activities, end_of_2027 - timedelta(seconds=1)) == 600
    assert qualifying_spend(PROGRAM, activities, end_of_2027) == Decimal(0)


def test_the_better_of_this_year_and_last_year_qualifies_not_their_sum() -> None:
    activities = [
        spend("400", LAST_HALF_HOUR_OF_2025, "p1"),
        spend("300", FIRST_HALF_HOUR_OF_2026, "p2"),
    ]
    assert qualifying_spend(PROGRAM, activities, FIRST_HALF_HOUR_OF_2026) == Decimal(400)
    activities.append(spend("150", FIRST_HALF_HOUR_OF_2026 + timedelta(days=1), "p3"))
    assert qualifying_spend(PROGRAM, activities, END_OF_2026 - timedelta(days=1)) == 450


def test_a_refund_across_the_year_boundary_lowers_its_purchase_year() -> None:
    refunded_at = FIRST_HALF_HOUR_OF_2026 + timedelta(days=4)
    activities = [
        spend("600", LAST_HALF_HOUR_OF_2025, "p1"),
        spend("-200", refunded_at, "r1", attributed_at=LAST_HALF_HOUR_OF_2025),
    ]
    # Before the refund happened, the purchase counts whole.
    assert qualifying_spend(PROGRAM, activities, refunded_at - timedelta(days=1)) == 600
    # After it, 2025's spend is 400 and 2026's nothing: "buy, refund, keep silver" fails.
    assert qualifying_spend(PROGRAM, activities, refunded_at) == Decimal(400)
    # Counted in its own year instead, the refund would have left 2025's 600 standing.
    unattributed = [activities[0], spend("-200", refunded_at, "r1")]
    assert qualifying_spend(PROGRAM, unattributed, refunded_at) == Decimal(600)


def test_a_review_keeps_a_tier_last_year_earned_and_lowers_it_a_year_later() -> None:
    reached = datetime(2025, 3, 1, 12, tzinfo=HELSINKI)
    silver = CustomerTier("c1", "silver", reached, PROGRAM.review_at(reached))
    activities = [spend("600", reached, "p1")]
    kept = review_due(PROGRAM, silver, activities, silver.review_at)
    assert kept.changes == ()
    assert kept.customer.tier == "silver"
    lowered = review_due(PROGRAM, kept.customer, activities, kept.customer.review_at)
    [change] = lowered.changes
    assert (change.from_tier, change.to_tier, change.direction) == ("silver", "bronze", "down")
    assert PROGRAM.year_of(change.effective_at) == 2027


def test_a_history_under_the_calendar_year_judges_upgrades_on_the_current_year() -> None:
    history = SpendHistory(PROGRAM, [spend("300", LAST_HALF_HOUR_OF_2025, "p1")])
    customer = new_customer(PROGRAM, "c1", since=LAST_HALF_HOUR_OF_2025 - timedelta(days=9))
    history.record(spend("250", FIRST_HALF_HOUR_OF_2026, "p2"))
    # 300 in 2025 and 250 in 2026: neither year reaches silver on its own.
    assert history.upgrade_for(customer, arrived_at=FIRST_HALF_HOUR_OF_2026) is None
    later = FIRST_HALF_HOUR_OF_2026 + timedelta(days=1)
    history.record(spend("250", later, "p3"))
    change = history.upgrade_for(customer, arrived_at=later)
    assert change is not None
    assert (change.to_tier, change.effective_at) == ("silver", later)


@pytest.mark.parametrize("same_batch", [True, False], ids=["same-batch", "later-batch"])
async def test_the_handler_dates_a_refund_by_its_recorded_purchase(same_batch: bool) -> None:
    tiers, sink = FakeTiers(), CollectingSink()
    context = Context(tiers=tiers, sink=sink, program=PROGRAM, now=END_OF_2026)
    bought = purchase("p1", "600", at=LAST_HALF_HOUR_OF_2025)
    returned = refund("r1", "p1", "200", at=FIRST_HALF_HOUR_OF_2026 + timedelta(days=4))
    if same_batch:
        await apply_batch([enrolled(), bought, returned], context)
    else:
        await apply_batch([enrolled(), bought], context)
        await apply_batch([returned], context)
    assert tiers.activity["refund:demo:r1"].attributed_at == LAST_HALF_HOUR_OF_2025
    assert ("purchase_times" in tiers.calls) is not same_batch


async def test_a_refund_of_an_unknown_purchase_keeps_its_own_instant() -> None:
    tiers, sink = FakeTiers(), CollectingSink()
    context = Context(tiers=tiers, sink=sink, program=PROGRAM, now=END_OF_2026)
    await apply_batch([refund("r1", "nowhere", "20", at=FIRST_HALF_HOUR_OF_2026)], context)
    recorded = tiers.activity["refund:demo:r1"]
    assert recorded.attributed_at is None
    assert recorded.spent_at == FIRST_HALF_HOUR_OF_2026
