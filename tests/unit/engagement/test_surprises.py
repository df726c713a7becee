"""Surprise rewards' rules (`domain/surprises.py`): the draw deterministic, recomputable from
the secret and uniform enough; a rule validated by field; what qualifies; and `admit`, which
never spends a day past its budget, never lets a member win a rule twice within its cooldown
and never admits a purchase twice."""

from __future__ import annotations

import hashlib
import hmac
import math
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.engagement.domain.model import InvalidRule, Item, Purchase, Reward, Scope, Window
from services.engagement.domain.surprises import (
    Candidate,
    SurpriseRule,
    Win,
    admit,
    budget_day,
    draw,
    draw_decimal,
    qualifies,
    surprise_grant_id,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SECRET = b"an-example-program-secret-of-32-bytes!"
WINDOW = Window(NOW - timedelta(days=30), NOW + timedelta(days=30))


def rule(**changes: object) -> SurpriseRule:
    fields: dict[str, object] = {
        "surprise_id": "s1",
        "name": "A coffee on us",
        "chance": Decimal("0.02"),
        "reward": Reward(points=40),
        "scope": Scope(),
        "window": WINDOW,
    }
    fields.update(changes)
    return SurpriseRule(**fields)  # type: ignore[arg-type]


def purchase(**changes: object) -> Purchase:
    fields: dict[str, object] = {
        "purchase_id": "p1",
        "customer_id": "c1",
        "partner_id": "caffe-nord",
        "store_id": "milano-1",
        "occurred_at": NOW,
        "total": Decimal("10.00"),
        "items": (Item("espresso", "coffee", Decimal(1), Decimal("10.00")),),
    }
    fields.update(changes)
    return Purchase(**fields)  # type: ignore[arg-type]


# --- The draw ----------------------------------------------------------------------------


def test_the_worked_example_of_the_guide_recomputes() -> None:
    """docs/engagement.md, "Surprise rewards": what an auditor computes by hand."""
    secret = b"0123456789abcdef0123456789abcdef"
    drawn = draw(secret, "s-espresso", "caffe-nord:p-1001")
    digest = hmac.new(secret, b"s-espresso/caffe-nord:p-1001", hashlib.sha256).hexdigest()
    assert drawn.message == "s-espresso/caffe-nord:p-1001"
    assert drawn.digest == digest
    assert drawn.number == int(digest[:16], 16)
    assert drawn.value == Fraction(int(digest[:16], 16), 2**64)
    assert (drawn.digest[:16], draw_decimal(drawn.value)) == EXAMPLE


# The guide's example: the first 16 hex digits of the digest and the draw, to 20 places.
EXAMPLE = ("dcd1814600ed1f20", "0.86257179221222600624")


@given(
    secret=st.binary(min_size=32, max_size=64),
    surprise_id=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,20}", fullmatch=True),
    key=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,40}", fullmatch=True),
)
def test_a_draw_is_the_same_every_time_and_in_zero_to_one(
    secret: bytes, surprise_id: str, key: str
) -> None:
    first, again = draw(secret, surprise_id, key), draw(secret, surprise_id, key)
    assert first == again
    assert 0 <= first.value < 1
    assert first.wins(Decimal(1))
    digest = hmac.new(secret, f"{surprise_id}/{key}".encode(), hashlib.sha256).digest()
    assert first.number == int.from_bytes(digest[:8], "big")
    assert first.wins(Decimal("0.5")) == (first.number < 2**63)


def test_another_secret_rule_or_purchase_draws_otherwise() -> None:
    drawn = draw(SECRET, "s1", "demo:p1")
    assert drawn.number != draw(SECRET[::-1], "s1", "demo:p1").number
    assert drawn.number != draw(SECRET, "s2", "demo:p1").number
    assert drawn.number != draw(SECRET, "s1", "demo:p2").number


@settings(max_examples=5, deadline=None)
@given(secret=st.binary(min_size=32, max_size=32))
def test_draws_are_uniform_enough(secret: bytes) -> None:
    """Over 10,000 purchases a chance of 0.1 wins within 5 standard deviations of 1,000, and
    the draws fill the ten tenths of [0, 1) alike."""
    n, chance = 10_000, Decimal("0.1")
    draws = [draw(secret, "s1", f"demo:p-{i}") for i in range(n)]
    wins = sum(d.wins(chance) for d in draws)
    sigma = math.sqrt(n * 0.1 * 0.9)
    assert abs(wins - n * 0.1) < 5 * sigma
    tenths = [0] * 10
    for d in draws:
        tenths[int(d.value * 10)] += 1
    assert all(abs(count - 1000) < 5 * sigma for count in tenths)


def test_draw_decimal_truncates() -> None:
    assert draw_decimal(Fraction(1, 3), places=4) == "0.3333"
    assert draw_decimal(Fraction(0), places=3) == "0.000"
    assert draw_decimal(Fraction(2**64 - 1, 2**64), places=5) == "0.99999"


def test_a_grant_id_names_the_rule_and_the_purchase() -> None:
    assert surprise_grant_id("s1", "demo:p1") == surprise_grant_id("s1", "demo:p1")
    assert surprise_grant_id("s1", "demo:p1") != surprise_grant_id("s1", "demo:p2")
    assert surprise_grant_id("s1", "demo:p1") != surprise_grant_id("s2", "demo:p1")


# --- A rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"chance": Decimal(0)}, "chance"),
        ({"chance": Decimal("1.01")}, "chance"),
        ({"chance": Decimal("-0.5")}, "chance"),
        ({"chance": Decimal("NaN")}, "chance"),
        ({"chance": Decimal("0.0000000001")}, "chance"),
        ({"chance": 0.5}, "chance"),
        ({"cooldown_days": 0}, "cooldown_days"),
        ({"daily_budget": 0}, "daily_budget"),
        ({"daily_budget": 39}, "daily_budget"),  # below one reward: nobody could ever win
        ({"daily_budget": 100, "reward": Reward(reward_id="free-coffee")}, "daily_budget"),
        ({"min_tier": "diamond"}, "min_tier"),
        ({"surprise_id": "no spaces"}, "surprise_id"),
    ],
)
def test_a_rule_that_cannot_hold_names_its_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidRule) as raised:
        rule(**changes)
    assert raised.value.field == field


def test_the_smallest_and_the_largest_chance_hold() -> None:
    assert rule(chance=Decimal("0.000000001")).chance == Decimal("0.000000001")
    assert rule(chance=Decimal("1.000")).chance == 1


def test_what_qualifies() -> None:
    scoped = rule(scope=Scope(partner_id="caffe-nord", store_id="milano-1", category="coffee"))
    assert qualifies(scoped, purchase(), None)
    assert not qualifies(scoped, purchase(partner_id="other"), None)
    assert not qualifies(scoped, purchase(store_id="roma-2"), None)
    assert not qualifies(scoped, purchase(items=()), None)
    assert not qualifies(scoped, purchase(occurred_at=NOW + timedelta(days=31)), None)
    assert not qualifies(rule(min_tier="gold"), purchase(), "silver")
    assert qualifies(rule(min_tier="gold"), purchase(), "platinum")


def test_a_budget_day_is_the_utc_day_the_purchase_was_made() -> None:
    rome = timezone(timedelta(hours=1))
    assert budget_day(datetime(2026, 12, 1, 0, 30, tzinfo=rome)).isoformat() == "2026-11-30"
    assert budget_day(datetime(2026, 12, 1, 23, 30, tzinfo=UTC)).isoformat() == "2026-12-01"


# --- Admitting wins ----------------------------------------------------------------------


def candidate(r: SurpriseRule, customer_id: str, key: str, at: datetime) -> Candidate:
    return Candidate(r, customer_id, key, at)


def test_the_budget_admits_wins_in_order_until_the_next_would_pass_it() -> None:
    budgeted = rule(daily_budget=100)  # 40 points a win: two fit, a third would make 120
    day = (budgeted.surprise_id, budget_day(NOW))
    wins, spent = admit(
        [candidate(budgeted, f"c{i}", f"demo:p{i}", NOW) for i in range(4)], {}, {day: 0}
    )
    assert [w.customer_id for w in wins] == ["c0", "c1"]
    assert spent[day] == 80
    # The next day has a budget of its own.
    tomorrow = NOW + timedelta(days=1)
    more, spent = admit([candidate(budgeted, "c9", "demo:p9", tomorrow)], {}, spent)
    assert len(more) == 1 and spent[(budgeted.surprise_id, budget_day(tomorrow))] == 40


def test_a_cooldown_holds_a_member_both_ways_and_then_lets_them_win() -> None:
    cooled = rule(cooldown_days=7)
    past = {(cooled.surprise_id, "c1"): [Win(cooled.surprise_id, "c1", "demo:p0", NOW)]}
    wins, _ = admit(
        [
            candidate(cooled, "c1", "demo:p1", NOW + timedelta(days=6, hours=23)),
            candidate(cooled, "c1", "demo:p2", NOW - timedelta(days=3)),  # reported late
            candidate(cooled, "c1", "demo:p3", NOW + timedelta(days=7)),
            candidate(cooled, "c1", "demo:p4", NOW + timedelta(days=8)),  # 1 day after p3
            candidate(cooled, "c2", "demo:p5", NOW),  # another member
        ],
        past,
        {},
    )
    assert [w.purchase_key for w in wins] == ["demo:p3", "demo:p5"]


def test_a_purchase_that_won_wins_no_more() -> None:
    past = {("s1", "c1"): [Win("s1", "c1", "demo:p1", NOW)]}
    again = [candidate(rule(), "c1", "demo:p1", NOW), candidate(rule(), "c1", "demo:p1", NOW)]
    assert admit(again, past, {})[0] == []
    assert len(admit(again, {}, {})[0]) == 1


RULES = [
    rule(surprise_id="budgeted", daily_budget=100),
    rule(surprise_id="cooled", cooldown_days=3),
    rule(surprise_id="both", daily_budget=200, cooldown_days=2, reward=Reward(points=70)),
    rule(surprise_id="free"),
]
# A purchase is one member's, made at one time: its number says whose (of three) and when.
candidates = st.lists(
    st.builds(
        lambda r, n: Candidate(r, f"c{n % 3}", f"demo:p{n}", NOW + timedelta(hours=7 * n)),
        st.sampled_from(RULES),
        st.integers(0, 40),
    ),
    max_size=40,
)


@given(first=candidates, second=candidates)
def test_admitted_wins_never_pass_a_budget_a_cooldown_or_a_purchase_once(
    first: list[Candidate], second: list[Candidate]
) -> None:
    """Two batches, the second seeing what the first admitted (as the database shows it)."""
    wins, spent = admit(first, {}, {})
    past: dict[tuple[str, str], list[Win]] = defaultdict(list)
    for w in wins:
        past[(w.surprise_id, w.customer_id)].append(w)
    more, spent = admit(second, past, spent)
    admitted = wins + more
    by_id = {r.surprise_id: r for r in RULES}

    keys = [(w.surprise_id, w.purchase_key) for w in admitted]
    assert len(keys) == len(set(keys))
    per_day: dict[tuple[str, date], int] = defaultdict(int)
    for w in admitted:
        per_day[(w.surprise_id, budget_day(w.won_at))] += by_id[w.surprise_id].reward.points or 0
    for (surprise_id, day), points in per_day.items():
        budget = by_id[surprise_id].daily_budget
        assert budget is None or points <= budget
        if budget is not None:
            assert spent[(surprise_id, day)] == points
    by_member: dict[tuple[str, str], list[Win]] = defaultdict(list)
    for w in admitted:
        by_member[(w.surprise_id, w.customer_id)].append(w)
    for (surprise_id, _), found in by_member.items():
        cooldown = by_id[surprise_id].cooldown_days
        if cooldown is None:
            continue
        times = sorted(w.won_at for w in found)
        assert all(b - a >= timedelta(days=cooldown) for a, b in pairwise(times))
    assert set(keys) <= {(c.rule.surprise_id, c.purchase_key) for c in first + second}
    # The same candidates again admit nothing new (a redelivery).
    for w in more:
        past[(w.surprise_id, w.customer_id)].append(w)
    assert admit(first + second, past, spent)[0] == []
