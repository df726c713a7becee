"""The tier rules, pure: thresholds, the qualifying window, upgrades and progress."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.tiers.domain.model import (
    CustomerTier,
    Direction,
    Program,
    QualifyingActivity,
    SpendBasis,
    SpendHistory,
    TierDefinition,
    after_change,
    enrol,
    new_customer,
    progress,
    qualifying_spend,
    upgrade_for,
)

PROGRAM = Program()
NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)

amounts = st.decimals(
    min_value=Decimal("-10000"), max_value=Decimal("100000"), places=2, allow_nan=False
)


def activity(amount: str, at: datetime, activity_id: str | None = None) -> QualifyingActivity:
    return QualifyingActivity(
        activity_id=activity_id or f"purchase:demo:{amount}@{at.isoformat()}",
        customer_id="c1",
        amount=Decimal(amount),
        occurred_at=at,
    )


def bronze_since(since: datetime = NOW - timedelta(days=30)) -> CustomerTier:
    return new_customer(PROGRAM, "c1", since=since)


@pytest.mark.parametrize(
    ("spend", "tier"),
    [
        ("-20", "bronze"),
        ("0", "bronze"),
        ("499.99", "bronze"),
        ("500", "silver"),
        ("1999.99", "silver"),
        ("2000.00", "gold"),
        ("4999.99", "gold"),
        ("5000", "platinum"),
        ("1000000", "platinum"),
    ],
)
def test_thresholds_are_reached_at_exactly_their_amount(spend: str, tier: str) -> None:
    assert PROGRAM.tier_for_spend(Decimal(spend)).name == tier


@given(lower=amounts, higher=amounts)
def test_more_spend_never_means_a_lower_tier(lower: Decimal, higher: Decimal) -> None:
    lower, higher = sorted((lower, higher))
    assert PROGRAM.rank(PROGRAM.tier_for_spend(lower).name) <= PROGRAM.rank(
        PROGRAM.tier_for_spend(higher).name
    )


@given(spend=amounts)
def test_the_tier_for_a_spend_is_the_highest_whose_threshold_it_reaches(spend: Decimal) -> None:
    tier = PROGRAM.tier_for_spend(spend)
    above = PROGRAM.tier_above(tier.name)
    assert tier.threshold <= max(spend, Decimal(0))
    assert above is None or spend < above.threshold


def test_qualifying_spend_is_purchases_minus_refunds() -> None:
    activities = [
        activity("300", NOW - timedelta(days=10)),
        activity("250", NOW - timedelta(days=5)),
        activity("-100", NOW - timedelta(days=1), activity_id="refund:demo:r1"),
    ]
    assert qualifying_spend(PROGRAM, activities, NOW) == Decimal("450")


def test_the_window_is_open_at_its_start_and_closed_at_its_end() -> None:
    window = timedelta(days=365)
    activities = [
        activity("1", NOW - window),  # exactly 365 days back: out
        activity("10", NOW - window + timedelta(microseconds=1)),
        activity("100", NOW),  # the instant looked at: in
        activity("1000", NOW + timedelta(microseconds=1)),  # after it: out
    ]
    assert qualifying_spend(PROGRAM, activities, NOW) == Decimal("110")


def test_a_purchase_reaching_silver_upgrades_at_the_instant_it_occurred() -> None:
    activities = [activity("300", NOW - timedelta(days=2)), activity("250", NOW)]
    change = upgrade_for(PROGRAM, bronze_since(), activities, arrived_at=NOW)
    assert change is not None
    assert (change.from_tier, change.to_tier, change.direction) == (
        "bronze",
        "silver",
        Direction.UP,
    )
    assert change.reason == "qualifying_spend"
    assert change.effective_at == NOW
    assert change.review_at == NOW + timedelta(days=365)


def test_one_big_purchase_goes_straight_to_the_highest_tier_it_reaches() -> None:
    change = upgrade_for(PROGRAM, bronze_since(), [activity("2500", NOW)], arrived_at=NOW)
    assert change is not None
    assert (change.from_tier, change.to_tier) == ("bronze", "gold")


def test_spend_below_the_next_threshold_changes_nothing() -> None:
    assert upgrade_for(PROGRAM, bronze_since(), [activity("499.99", NOW)], arrived_at=NOW) is None


def test_spend_that_only_keeps_the_current_tier_changes_nothing() -> None:
    silver = CustomerTier("c1", "silver", NOW - timedelta(days=9), NOW + timedelta(days=356))
    assert upgrade_for(PROGRAM, silver, [activity("600", NOW)], arrived_at=NOW) is None


def test_spend_that_supports_less_than_the_current_tier_never_downgrades() -> None:
    gold = CustomerTier("c1", "gold", NOW - timedelta(days=9), NOW + timedelta(days=356))
    activities = [activity("2500", NOW - timedelta(days=9)), activity("-2400", NOW)]
    assert upgrade_for(PROGRAM, gold, activities, arrived_at=NOW) is None


def test_spend_that_fell_out_of_the_window_does_not_qualify() -> None:
    activities = [activity("400", NOW - timedelta(days=365)), activity("200", NOW)]
    assert upgrade_for(PROGRAM, bronze_since(), activities, arrived_at=NOW) is None


def test_a_purchase_reported_late_completes_a_crossing_of_a_later_purchase() -> None:
    later = NOW + timedelta(days=3)
    # The later 300 was counted first and fell short; the earlier 250 arrives after it.
    activities = [activity("250", NOW), activity("300", later)]
    change = upgrade_for(PROGRAM, bronze_since(), activities, arrived_at=NOW)
    assert change is not None
    assert change.to_tier == "silver"
    assert change.effective_at == later


def test_an_upgrade_never_predates_the_tier_it_replaces() -> None:
    silver = CustomerTier(
        "c1", "silver", NOW + timedelta(days=1), NOW + timedelta(days=366), enrolled_at=NOW
    )
    change = upgrade_for(PROGRAM, silver, [activity("2100", NOW)], arrived_at=NOW)
    assert change is not None
    assert change.effective_at == silver.since


def test_an_upgrade_of_a_customer_not_enrolled_yet_is_dated_by_the_spend_alone() -> None:
    # First seen by a later purchase: when that was read says nothing about their tier.
    first_seen = bronze_since(since=NOW + timedelta(days=1))
    change = upgrade_for(PROGRAM, first_seen, [activity("600", NOW)], arrived_at=NOW)
    assert change is not None
    assert change.effective_at == NOW


def test_an_enrolment_dates_the_entry_tier_of_a_customer_first_seen_by_a_purchase() -> None:
    first_seen = bronze_since(since=NOW)
    enrolled_at = NOW - timedelta(days=3)
    customer = enrol(PROGRAM, first_seen, enrolled_at)
    assert (customer.since, customer.enrolled_at) == (enrolled_at, enrolled_at)
    assert customer.review_at == enrolled_at + timedelta(days=365)
    # A tier reached before the enrolment arrived keeps its own dates.
    silver = CustomerTier("c1", "silver", NOW, NOW + timedelta(days=365))
    assert enrol(PROGRAM, silver, enrolled_at) == CustomerTier(
        "c1", "silver", NOW, NOW + timedelta(days=365), enrolled_at
    )
    # Enrolled once is enrolled: a second enrolment changes nothing.
    assert enrol(PROGRAM, customer, NOW - timedelta(days=9)) == customer


@given(spend=amounts)
def test_progress_is_the_gap_to_the_tier_above(spend: Decimal) -> None:
    tier = PROGRAM.tier_for_spend(spend).name
    standing = progress(PROGRAM, tier, spend)
    above = PROGRAM.tier_above(tier)
    if above is None:
        assert standing.next_tier is None
        assert standing.amount_to_next_tier is None
    else:
        assert standing.next_tier == above.name
        assert standing.amount_to_next_tier is not None
        assert standing.amount_to_next_tier > 0
        assert standing.amount_to_next_tier + spend == above.threshold


@pytest.mark.parametrize(
    ("tier", "spend", "next_tier", "gap"),
    [
        ("bronze", "0", "silver", "500"),
        ("bronze", "450.50", "silver", "49.50"),
        ("silver", "550", "gold", "1450"),
        ("gold", "4999.99", "platinum", "0.01"),
        # Kept above what the spend supports (refunds): the gap is still to the tier above.
        ("gold", "100", "platinum", "4900"),
    ],
)
def test_progress_examples(tier: str, spend: str, next_tier: str, gap: str) -> None:
    standing = progress(PROGRAM, tier, Decimal(spend))
    assert (standing.next_tier, standing.amount_to_next_tier) == (next_tier, Decimal(gap))


def test_platinum_has_no_next_tier() -> None:
    standing = progress(PROGRAM, "platinum", Decimal("7000"))
    assert (standing.next_tier, standing.amount_to_next_tier) == (None, None)


@pytest.mark.parametrize(
    "tiers",
    [
        (),
        (TierDefinition("bronze", Decimal(10)),),
        (TierDefinition("bronze", Decimal(0)), TierDefinition("silver", Decimal(0))),
        (TierDefinition("bronze", Decimal(0)), TierDefinition("bronze", Decimal(5))),
        (
            TierDefinition("bronze", Decimal(0)),
            TierDefinition("gold", Decimal(2000)),
            TierDefinition("silver", Decimal(500)),
        ),
    ],
)
def test_a_program_refuses_tiers_that_cannot_be_ranked(tiers: tuple[TierDefinition, ...]) -> None:
    with pytest.raises(ValueError):
        Program(tiers=tiers)


# -- a customer's history as a batch walks it ----------------------------------------------

# Activity in the order it arrives: an amount (negative for a refund) and how many hours
# before NOW it occurred. Arrival and occurrence orders differ, as with purchases reported
# late, and the spans cross window and year boundaries.
arrivals = st.lists(
    st.tuples(
        st.decimals(min_value=Decimal("-900"), max_value=Decimal("2500"), places=2),
        st.integers(min_value=0, max_value=24 * 800),
    ),
    max_size=25,
)


@pytest.mark.parametrize(
    "program",
    [
        PROGRAM,
        Program(basis=SpendBasis.CALENDAR_YEAR),
        Program(qualifying_window_days=3),
    ],
    ids=["rolling-365", "calendar-year", "rolling-3"],
)
@given(arrived=arrivals, in_order=st.booleans())
def test_a_history_judges_each_purchase_as_upgrade_for_over_all_before_it(
    program: Program, arrived: list[tuple[Decimal, int]], in_order: bool
) -> None:
    if in_order:  # the common case, the running sum's
        arrived = sorted(arrived, key=lambda item: -item[1])
    customer = new_customer(program, "c1", since=NOW - timedelta(days=900))
    expected_customer = customer
    history = SpendHistory(program)
    recorded: list[QualifyingActivity] = []
    for n, (amount, hours_ago) in enumerate(arrived):
        at = NOW - timedelta(hours=hours_ago)
        new = QualifyingActivity(f"a{n}", "c1", amount, at)
        history.record(new)
        recorded.append(new)
        if amount < 0:
            continue  # a refund is recorded only
        expected = upgrade_for(program, expected_customer, recorded, arrived_at=at)
        assert history.upgrade_for(customer, arrived_at=at) == expected
        assert history.spend_as_of(at) == qualifying_spend(program, recorded, at)
        if expected is not None:
            customer = expected_customer = after_change(customer, expected)
    assert sorted(history.activities, key=lambda a: a.occurred_at) == list(history.activities)


def test_a_history_starts_from_what_was_recorded_before() -> None:
    before = [activity("300", NOW - timedelta(days=2)), activity("150", NOW - timedelta(days=1))]
    history = SpendHistory(PROGRAM, reversed(before))
    history.record(activity("50", NOW))
    change = history.upgrade_for(bronze_since(), arrived_at=NOW)
    assert change is not None
    assert (change.from_tier, change.to_tier, change.effective_at) == ("bronze", "silver", NOW)


def test_nothing_is_above_the_top_tier() -> None:
    top = CustomerTier("c1", "platinum", NOW - timedelta(days=1), NOW + timedelta(days=364))
    history = SpendHistory(PROGRAM, [activity("90000", NOW)])
    assert history.upgrade_for(top, arrived_at=NOW) is None


def test_after_a_change_the_customer_has_its_tier_since_and_review_date() -> None:
    change = upgrade_for(PROGRAM, bronze_since(), [activity("600", NOW)], arrived_at=NOW)
    assert change is not None
    moved = after_change(bronze_since(), change)
    assert (moved.tier, moved.since, moved.review_at) == ("silver", NOW, change.review_at)
    assert moved.customer_id == "c1"
