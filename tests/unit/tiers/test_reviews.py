"""The tier rules at review, pure: keeping or lowering a tier, warnings, staff overrides."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.tiers.domain.model import (
    REVIEW,
    CustomerTier,
    Direction,
    DowngradePolicy,
    Program,
    QualifyingActivity,
    SpendHistory,
    after_change,
    amount_to_keep_tier,
    downgrade_warning,
    override,
    review_due,
    tier_after_review,
)

PROGRAM = Program()
RECOMPUTE = Program(downgrade_policy=DowngradePolicy.RECOMPUTE)
SINCE = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
REVIEW_AT = SINCE + timedelta(days=365)


def activity(amount: str, at: datetime, activity_id: str | None = None) -> QualifyingActivity:
    return QualifyingActivity(
        activity_id=activity_id or f"purchase:demo:{amount}@{at.isoformat()}",
        customer_id="c1",
        amount=Decimal(amount),
        occurred_at=at,
    )


def customer(tier: str, since: datetime = SINCE, program: Program = PROGRAM) -> CustomerTier:
    return CustomerTier("c1", tier, since=since, review_at=program.review_at(since))


def test_the_review_is_365_days_after_the_last_change_across_a_leap_day() -> None:
    since = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)
    assert customer("gold", since).review_at == datetime(2028, 2, 29, 9, 30, tzinfo=UTC)


def test_a_tier_exactly_supported_at_review_is_kept_and_reviewed_again_a_year_later() -> None:
    gold = customer("gold")
    spend = [activity("2000", REVIEW_AT - timedelta(days=10))]
    outcome = review_due(PROGRAM, gold, spend, as_of=REVIEW_AT)
    assert outcome.changes == ()
    assert outcome.customer.tier == "gold"
    assert outcome.customer.since == SINCE
    assert outcome.customer.review_at == REVIEW_AT + timedelta(days=365)


def test_a_cent_short_at_review_drops_one_tier_by_default() -> None:
    platinum = customer("platinum")
    spend = [activity("4999.99", REVIEW_AT - timedelta(days=10))]
    outcome = review_due(PROGRAM, platinum, spend, as_of=REVIEW_AT)
    [change] = outcome.changes
    assert (change.from_tier, change.to_tier) == ("platinum", "gold")
    assert change.direction is Direction.DOWN
    assert change.reason == REVIEW
    assert change.effective_at == REVIEW_AT
    assert change.review_at == REVIEW_AT + timedelta(days=365)
    assert outcome.customer == after_change(platinum, change)


def test_one_down_drops_a_single_tier_however_little_the_spend() -> None:
    outcome = review_due(PROGRAM, customer("platinum"), [], as_of=REVIEW_AT)
    assert [c.to_tier for c in outcome.changes] == ["gold"]


def test_recompute_drops_straight_to_what_the_spend_supports() -> None:
    spend = [activity("600", REVIEW_AT - timedelta(days=1))]
    outcome = review_due(RECOMPUTE, customer("platinum", program=RECOMPUTE), spend, REVIEW_AT)
    assert [c.to_tier for c in outcome.changes] == ["silver"]


def test_nothing_is_reviewed_before_the_review_date() -> None:
    gold = customer("gold")
    outcome = review_due(PROGRAM, gold, [], as_of=REVIEW_AT - timedelta(microseconds=1))
    assert outcome.changes == ()
    assert outcome.customer == gold


def test_the_spend_that_counts_is_the_spend_as_of_the_review_not_as_of_the_run() -> None:
    # Enough spend, but only after the review date: a late job must not count it.
    gold = customer("gold")
    late = [activity("3000", REVIEW_AT + timedelta(days=2))]
    outcome = review_due(PROGRAM, gold, late, as_of=REVIEW_AT + timedelta(days=5))
    assert [c.to_tier for c in outcome.changes] == ["silver"]


def test_a_refund_across_a_threshold_downgrades_at_review_only() -> None:
    at = REVIEW_AT - timedelta(days=100)
    spend = [activity("2100", at), activity("-200", at + timedelta(days=1), "refund:demo:r1")]
    gold = customer("gold")
    assert review_due(PROGRAM, gold, spend, as_of=REVIEW_AT - timedelta(days=1)).changes == ()
    [change] = review_due(PROGRAM, gold, spend, as_of=REVIEW_AT).changes
    assert (change.from_tier, change.to_tier) == ("gold", "silver")


def test_one_purchase_crossing_two_tiers_upgrades_once_and_moves_the_review() -> None:
    bronze = customer("bronze")
    at = SINCE + timedelta(days=30)
    history = SpendHistory(PROGRAM)
    history.record(activity("2500", at))
    change = history.upgrade_for(bronze, arrived_at=at)
    assert change is not None
    assert (change.from_tier, change.to_tier) == ("bronze", "gold")
    assert change.review_at == at + timedelta(days=365)


def test_a_job_long_overdue_makes_every_review_due_in_turn() -> None:
    outcome = review_due(PROGRAM, customer("platinum"), [], as_of=REVIEW_AT + timedelta(days=800))
    assert [c.to_tier for c in outcome.changes] == ["gold", "silver", "bronze"]
    assert [c.effective_at for c in outcome.changes] == [
        REVIEW_AT,
        REVIEW_AT + timedelta(days=365),
        REVIEW_AT + timedelta(days=730),
    ]
    assert outcome.customer.review_at == REVIEW_AT + timedelta(days=1095)


def test_reviewing_again_as_of_the_same_instant_changes_nothing() -> None:
    first = review_due(PROGRAM, customer("gold"), [], as_of=REVIEW_AT)
    again = review_due(PROGRAM, first.customer, [], as_of=REVIEW_AT)
    assert again.changes == ()
    assert again.customer == first.customer


def test_the_bronze_tier_is_kept_at_review_whatever_the_spend() -> None:
    spend = [activity("-50", REVIEW_AT - timedelta(days=3))]
    outcome = review_due(PROGRAM, customer("bronze"), spend, as_of=REVIEW_AT)
    assert outcome.changes == ()


def test_amount_to_keep_tier_counts_only_what_still_counts_at_review() -> None:
    gold = customer("gold")
    spend = [
        activity("1500", REVIEW_AT - timedelta(days=365)),  # out of the window by then
        activity("1200", REVIEW_AT - timedelta(days=100)),
    ]
    assert amount_to_keep_tier(PROGRAM, gold, spend) == Decimal(800)
    assert amount_to_keep_tier(PROGRAM, gold, [activity("2000", SINCE)]) == Decimal(2000)
    assert amount_to_keep_tier(PROGRAM, gold, [*spend, activity("900", SINCE)]) == Decimal(800)
    enough = [activity("2000.01", REVIEW_AT - timedelta(days=1))]
    assert amount_to_keep_tier(PROGRAM, gold, enough) == Decimal(0)


def test_a_warning_comes_within_thirty_days_of_a_review_that_would_downgrade() -> None:
    gold = customer("gold")
    spend = [activity("1500", REVIEW_AT - timedelta(days=50))]
    warn_from = REVIEW_AT - timedelta(days=30)
    assert downgrade_warning(PROGRAM, gold, spend, warn_from - timedelta(seconds=1)) is None
    warning = downgrade_warning(PROGRAM, gold, spend, warn_from)
    assert warning is not None
    assert (warning.tier, warning.would_become) == ("gold", "silver")
    assert warning.review_at == REVIEW_AT
    assert warning.amount_to_keep_tier == Decimal(500)
    assert downgrade_warning(PROGRAM, gold, spend, REVIEW_AT) is None  # the review decides


def test_no_warning_once_the_customer_has_requalified() -> None:
    gold = customer("gold")
    spend = [activity("2000", REVIEW_AT - timedelta(days=40))]
    assert downgrade_warning(PROGRAM, gold, spend, REVIEW_AT - timedelta(days=20)) is None


def test_a_warning_names_the_tier_recompute_would_leave() -> None:
    platinum = customer("platinum", program=RECOMPUTE)
    warning = downgrade_warning(RECOMPUTE, platinum, [], REVIEW_AT - timedelta(days=1))
    assert warning is not None
    assert warning.would_become == "bronze"


def test_an_override_holds_until_its_date_then_is_reviewed() -> None:
    at = SINCE + timedelta(days=10)
    until = at + timedelta(days=90)
    change = override(
        PROGRAM, customer("silver"), tier="platinum", reason="VIP", actor="ops", at=at, until=until
    )
    assert change.direction is Direction.UP
    assert (change.reason, change.actor, change.review_at) == ("VIP", "ops", until)
    promoted = after_change(customer("silver"), change)
    assert review_due(PROGRAM, promoted, [], until - timedelta(seconds=1)).changes == ()
    [down] = review_due(PROGRAM, promoted, [], until).changes
    assert (down.from_tier, down.to_tier) == ("platinum", "gold")


def test_an_override_without_a_date_holds_until_a_review_a_year_later() -> None:
    at = SINCE + timedelta(days=10)
    change = override(
        PROGRAM, customer("gold"), tier="silver", reason="fraud", actor="ops", at=at, until=None
    )
    assert change.direction is Direction.DOWN
    assert change.review_at == at + timedelta(days=365)


@pytest.mark.parametrize(
    ("tier", "until"),
    [("gold", None), ("gold", SINCE), ("diamond", None), ("silver", SINCE - timedelta(days=1))],
)
def test_an_override_refuses_no_change_a_past_date_or_an_unknown_tier(
    tier: str, until: datetime | None
) -> None:
    with pytest.raises(ValueError):
        override(
            PROGRAM, customer("gold"), tier=tier, reason="x", actor="ops", at=SINCE, until=until
        )


@given(
    tier=st.sampled_from(["bronze", "silver", "gold", "platinum"]),
    spend=st.decimals(min_value=-1000, max_value=10000, places=2, allow_nan=False),
    policy=st.sampled_from(list(DowngradePolicy)),
)
def test_a_review_never_raises_and_lowers_by_the_policy_alone(
    tier: str, spend: Decimal, policy: DowngradePolicy
) -> None:
    program = Program(downgrade_policy=policy)
    current = program.rank(tier)
    supported = program.rank(program.tier_for_spend(spend).name)
    after = program.rank(tier_after_review(program, customer(tier, program=program), spend).name)
    if supported >= current:
        assert after == current
    elif policy is DowngradePolicy.ONE_DOWN:
        assert after == current - 1
    else:
        assert after == supported
