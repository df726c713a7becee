"""Stamp cards: which purchases give stamps, completions with the surplus carried over, and
refunds taking stamps (or completed cards) back."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.engagement.domain.ids import derived_id
from services.engagement.domain.model import InvalidRule, Item, Purchase, Reward, Scope, Window
from services.engagement.domain.stamps import (
    MAX_STAMPS_PER_PURCHASE,
    Card,
    Completion,
    StampCardRule,
    add_stamps,
    completion_grant_id,
    stamps_for,
    stamps_refunded,
    take_back,
)

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
END = START + timedelta(days=30)


def rule(**changes: object) -> StampCardRule:
    fields: dict[str, object] = {
        "card_id": "coffee-card",
        "name": "Buy 9 coffees, the 10th is free",
        "stamps_required": 10,
        "per": "purchase",
        "scope": Scope(),
        "reward": Reward(points=100),
        "window": Window(START, END),
    }
    fields.update(changes)
    return StampCardRule(**fields)  # type: ignore[arg-type]


def item(category: str | None, quantity: str, unit_price: str = "2.50") -> Item:
    return Item(
        sku=f"sku-{category}",
        category=category,
        quantity=Decimal(quantity),
        unit_price=Decimal(unit_price),
    )


def purchase(*items: Item, total: str = "10.00", **changes: object) -> Purchase:
    fields: dict[str, object] = {
        "purchase_id": "p1",
        "customer_id": "c1",
        "partner_id": "bar",
        "store_id": "s1",
        "occurred_at": START + timedelta(days=1),
        "total": Decimal(total),
        "items": items,
    }
    fields.update(changes)
    return Purchase(**fields)  # type: ignore[arg-type]


def card(stamps: int = 0, completed: int = 0) -> Card:
    return Card("coffee-card", "c1", stamps=stamps, completed_count=completed)


def grant(number: int, purchase_key: str = "bar:p1") -> str:
    return completion_grant_id("coffee-card", "c1", number, purchase_key)


# --- The rule ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"card_id": ""}, "card_id"),
        ({"card_id": "coffee card"}, "card_id"),
        ({"name": ""}, "name"),
        ({"name": "x" * 129}, "name"),
        ({"stamps_required": 0}, "stamps_required"),
        ({"stamps_required": 1001}, "stamps_required"),
        ({"stamps_required": True}, "stamps_required"),
        ({"per": "visit"}, "per"),
        ({"min_amount": Decimal("-0.01")}, "min_amount"),
        ({"min_amount": Decimal("NaN")}, "min_amount"),
        ({"min_tier": "diamond"}, "min_tier"),
    ],
)
def test_a_rule_that_cannot_hold_names_its_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidRule) as error:
        rule(**changes)
    assert error.value.field == field


def test_a_sound_rule_is_accepted_at_its_bounds() -> None:
    assert rule(stamps_required=1).stamps_required == 1
    assert rule(stamps_required=1000, per="item", min_amount=Decimal(0)).per == "item"


# --- Stamps per purchase -----------------------------------------------------------------


def test_a_purchase_gives_one_stamp_with_or_without_items() -> None:
    assert stamps_for(rule(), purchase(), None) == 1
    assert stamps_for(rule(), purchase(item("coffee", "3")), None) == 1


def test_only_purchases_inside_the_window_give_stamps() -> None:
    assert stamps_for(rule(), purchase(occurred_at=START), None) == 1
    assert stamps_for(rule(), purchase(occurred_at=START - timedelta(seconds=1)), None) == 0
    assert stamps_for(rule(), purchase(occurred_at=END), None) == 0
    assert stamps_for(rule(window=Window(START)), purchase(occurred_at=END), None) == 1


def test_only_purchases_in_the_scope_give_stamps() -> None:
    at_bar = rule(scope=Scope(partner_id="bar", store_id="s1"))
    assert stamps_for(at_bar, purchase(), None) == 1
    assert stamps_for(at_bar, purchase(partner_id="shop"), None) == 0
    assert stamps_for(at_bar, purchase(store_id="s2"), None) == 0


def test_members_below_the_minimum_tier_get_no_stamps() -> None:
    silver = rule(min_tier="silver")
    assert stamps_for(silver, purchase(), None) == 0
    assert stamps_for(silver, purchase(), "bronze") == 0
    assert stamps_for(silver, purchase(), "silver") == 1
    assert stamps_for(silver, purchase(), "platinum") == 1


def test_the_minimum_amount_is_the_purchases_total() -> None:
    five = rule(min_amount=Decimal("5.00"))
    assert stamps_for(five, purchase(total="5.00"), None) == 1
    assert stamps_for(five, purchase(total="4.99"), None) == 0


def test_with_a_category_a_purchase_needs_a_line_of_it() -> None:
    coffee = rule(scope=Scope(category="coffee"))
    assert stamps_for(coffee, purchase(item("cake", "1"), item("coffee", "1")), None) == 1
    assert stamps_for(coffee, purchase(item("cake", "1")), None) == 0
    assert stamps_for(coffee, purchase(), None) == 0  # no items: nothing says it was coffee


def test_with_a_category_the_minimum_amount_is_what_its_lines_are_worth() -> None:
    coffee = rule(scope=Scope(category="coffee"), min_amount=Decimal("5.00"))
    cake = item("cake", "1", "20.00")
    assert stamps_for(coffee, purchase(cake, item("coffee", "2", "2.50"), total="25.00"), None) == 1
    assert stamps_for(coffee, purchase(cake, item("coffee", "1", "4.99"), total="24.99"), None) == 0


# --- Stamps per item ---------------------------------------------------------------------


def test_per_item_each_whole_unit_gives_a_stamp() -> None:
    per_item = rule(per="item")
    assert stamps_for(per_item, purchase(item("coffee", "2"), item("cake", "1")), None) == 3
    assert stamps_for(per_item, purchase(item("beans", "2.750")), None) == 2
    assert stamps_for(per_item, purchase(item("beans", "0.500")), None) == 0


def test_per_item_a_purchase_without_items_gives_none() -> None:
    assert stamps_for(rule(per="item"), purchase(), None) == 0


def test_per_item_with_a_category_only_its_lines_count() -> None:
    coffee = rule(per="item", scope=Scope(category="coffee"))
    bought = purchase(item("coffee", "2"), item("cake", "5"), item("coffee", "1"))
    assert stamps_for(coffee, bought, None) == 3


def test_per_item_the_minimum_amount_is_a_lines_unit_price() -> None:
    dear = rule(per="item", min_amount=Decimal("3.00"))
    bought = purchase(item("espresso", "4", "1.50"), item("latte", "2", "3.00"))
    assert stamps_for(dear, bought, None) == 2


def test_per_item_a_purchase_gives_at_most_the_bound() -> None:
    bulk = purchase(*(item(f"c{n}", "10000", "0.01") for n in range(3)), total="300.00")
    assert stamps_for(rule(per="item"), bulk, None) == MAX_STAMPS_PER_PURCHASE


def test_a_negative_quantity_gives_no_stamps_rather_than_taking_some() -> None:
    odd = purchase(item("coffee", "-3"), item("coffee", "1"))
    assert stamps_for(rule(per="item"), odd, None) == 1


# --- Completions -------------------------------------------------------------------------


def test_stamps_fill_the_current_card() -> None:
    after, done = add_stamps(rule(), card(3), 4, "bar:p1")
    assert (after.stamps, after.completed_count, done) == (7, 0, [])


def test_a_full_card_completes_and_a_new_one_begins_with_the_surplus() -> None:
    after, done = add_stamps(rule(), card(8, completed=1), 5, "bar:p1")
    assert (after.stamps, after.completed_count) == (3, 2)
    assert done == [Completion(2, grant(2))]


def test_enough_stamps_complete_several_cards_at_once() -> None:
    after, done = add_stamps(rule(), card(5), 27, "bar:p1")
    assert (after.stamps, after.completed_count) == (2, 3)
    assert done == [Completion(n, grant(n)) for n in (1, 2, 3)]
    assert len({c.grant_id for c in done}) == 3


def test_stamps_to_add_or_take_are_never_negative() -> None:
    with pytest.raises(ValueError):
        add_stamps(rule(), card(), -1, "bar:p1")
    with pytest.raises(ValueError):
        take_back(rule(), card(), -1)
    with pytest.raises(ValueError):
        Card("coffee-card", "c1", stamps=-1)


def test_a_completions_grant_id_is_derived_from_card_member_number_and_purchase() -> None:
    first = completion_grant_id("coffee-card", "c1", 1, "bar:p1")
    assert first == derived_id("stamp-card", "coffee-card", "c1", "1", "bar:p1")
    assert first == completion_grant_id("coffee-card", "c1", 1, "bar:p1")  # on every replay
    assert first != completion_grant_id("coffee-card", "c2", 1, "bar:p1")
    assert first != completion_grant_id("coffee-card", "c1", 2, "bar:p1")
    assert first != completion_grant_id("tea-card", "c1", 1, "bar:p1")
    assert first != completion_grant_id("coffee-card", "c1", 1, "bar:p2")
    assert first != completion_grant_id("coffee-card", "c1", 1, "shop:p1")


def test_a_completion_is_named_by_the_purchase_that_made_it() -> None:
    _, (made,) = add_stamps(rule(), card(9), 1, purchase(purchase_id="p7").key)
    assert made.grant_id == completion_grant_id("coffee-card", "c1", 1, "bar:p7")


# --- Taking stamps back ------------------------------------------------------------------


def test_a_refund_takes_its_stamps_from_the_current_card() -> None:
    after, revoked = take_back(rule(), card(6, completed=1), 4)
    assert (after.stamps, after.completed_count, revoked) == (2, 1, [])


def test_what_the_current_card_lacks_reverses_the_newest_completed_card() -> None:
    after, revoked = take_back(rule(), card(3, completed=2), 5)
    assert (after.stamps, after.completed_count, revoked) == (8, 1, [2])


def test_a_large_take_back_reverses_several_cards_newest_first() -> None:
    after, revoked = take_back(rule(), card(1, completed=3), 12)
    assert (after.stamps, after.completed_count, revoked) == (9, 1, [3, 2])


def test_what_no_card_holds_is_dropped() -> None:
    after, revoked = take_back(rule(), card(4, completed=1), 30)
    assert (after.stamps, after.completed_count, revoked) == (0, 0, [1])
    assert take_back(rule(), card(2), 5) == (card(0), [])


def test_a_card_completed_again_after_a_revocation_is_a_new_grant() -> None:
    first, (made,) = add_stamps(rule(), card(9), 1, "bar:p1")
    reversed_card, revoked = take_back(rule(), first, 1)
    assert revoked == [made.number] == [1]
    again, (remade,) = add_stamps(rule(), reversed_card, 1, "bar:p2")
    assert remade.number == made.number == 1
    assert remade.grant_id != made.grant_id
    assert remade.grant_id == grant(1, "bar:p2")
    assert take_back(rule(), again, 1) == (reversed_card, [1])


def test_a_card_over_full_after_the_rule_was_lowered_completes_on_its_next_stamp() -> None:
    lowered = rule(stamps_required=5)
    after, done = add_stamps(lowered, card(8), 1, "bar:p1")
    assert (after.stamps, after.completed_count, len(done)) == (4, 1, 1)
    assert take_back(lowered, card(8), 3) == (card(5), [])


# --- Stamps a refund takes back ----------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "total", "before", "now", "taken"),
    [
        (1, "10.00", "0", "10.00", 1),  # a whole refund takes them all
        (1, "10.00", "0", "4.00", 1),  # keeps floor(1 * 0.6): a partial refund takes it
        (1, "10.00", "4.00", "6.00", 0),  # taken already
        (4, "10.00", "0", "2.50", 1),
        (4, "10.00", "0", "2.49", 1),  # keeps floor(4 * 0.751) = 3
        (3, "3.00", "1.00", "1.00", 1),  # exact: keeps 1 of 3 after two thirds
        (3, "3.00", "0", "2.00", 2),
        (5, "10.00", "10.00", "1.00", 0),  # nothing left to take
        (0, "10.00", "0", "10.00", 0),
        (2, "0", "0", "0", 0),
    ],
)
def test_a_refund_takes_back_stamps_in_proportion(
    given: int, total: str, before: str, now: str, taken: int
) -> None:
    assert stamps_refunded(given, Decimal(total), Decimal(before), Decimal(now)) == taken


cents = st.integers(min_value=1, max_value=10_000_000)


@given(
    given=st.integers(min_value=0, max_value=1_000),
    total=cents,
    cuts=st.lists(st.integers(min_value=0, max_value=10_000_000), min_size=1, max_size=8),
)
def test_refunds_never_take_more_stamps_than_given_and_a_whole_refund_takes_all(
    given: int, total: int, cuts: list[int]
) -> None:
    amount = Decimal(total) / 100
    refunded, taken = Decimal(0), 0
    for cut in cuts:
        now = Decimal(cut) / 100
        step = stamps_refunded(given, amount, refunded, now)
        assert 0 <= step <= given
        taken, refunded = taken + step, refunded + now
        assert taken <= given
    taken += stamps_refunded(given, amount, refunded, amount)  # the rest refunded
    assert taken == given


# --- Invariants --------------------------------------------------------------------------

stamps_required = st.integers(min_value=1, max_value=12)
operations = st.lists(
    st.tuples(st.sampled_from(("add", "take")), st.integers(min_value=0, max_value=40)),
    max_size=25,
)


@settings(max_examples=200)
@given(required=stamps_required, ops=operations)
def test_stamps_and_completions_never_go_negative_and_grants_are_never_reused(
    required: int, ops: list[tuple[str, int]]
) -> None:
    """Whatever adds (each of its own purchase, as the handler counts a purchase once per card)
    and take-backs come, a card holds less than a full card, nothing is negative, every grant
    is made once and revoked at most once after it was made (the newest standing first), and
    what stands is exactly the card's completed_count, numbered 1 to it."""
    the_rule, current = rule(stamps_required=required), card()
    granted: list[str] = []
    standing: list[Completion] = []
    for n, (op, stamps) in enumerate(ops):
        if op == "add":
            current, done = add_stamps(the_rule, current, stamps, f"bar:p{n}")
            granted.extend(c.grant_id for c in done)
            standing.extend(done)
        else:
            current, revoked = take_back(the_rule, current, stamps)
            for number in revoked:
                assert standing.pop().number == number  # the newest first
        assert 0 <= current.stamps < required
        assert current.completed_count == len(standing) >= 0
        assert [c.number for c in standing] == list(range(1, len(standing) + 1))
    assert len(granted) == len(set(granted))


@given(
    required=stamps_required,
    start=st.integers(min_value=0, max_value=11),
    additions=st.lists(st.integers(min_value=0, max_value=30), max_size=12),
)
def test_a_card_completes_once_per_stamps_required_whatever_the_split(
    required: int, start: int, additions: list[int]
) -> None:
    the_rule = rule(stamps_required=required)
    current = card(start % required)
    numbers: list[int] = []
    for n, stamps in enumerate(additions):
        current, done = add_stamps(the_rule, current, stamps, f"bar:p{n}")
        numbers.extend(c.number for c in done)
    total = start % required + sum(additions)
    assert numbers == list(range(1, total // required + 1))
    assert (current.completed_count, current.stamps) == divmod(total, required)
    at_once, _ = add_stamps(the_rule, card(start % required), sum(additions), "bar:all")
    assert at_once == current


@given(
    required=stamps_required,
    stamps=st.integers(min_value=0, max_value=11),
    completed=st.integers(min_value=0, max_value=5),
    added=st.integers(min_value=0, max_value=60),
)
def test_taking_back_what_was_added_returns_the_card_to_where_it_was(
    required: int, stamps: int, completed: int, added: int
) -> None:
    the_rule = rule(stamps_required=required)
    before = card(stamps % required, completed)
    after, made = add_stamps(the_rule, before, added, "bar:p1")
    restored, revoked = take_back(the_rule, after, added)
    assert restored == before
    assert revoked == [c.number for c in reversed(made)]
