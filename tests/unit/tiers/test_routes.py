"""Tiers by amount bought, by referrals or by visits (issue 25): the program's routes, what
reaches a tier, and the progress shown per route."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.tiers.adapters.program_file import (
    DEFAULT_PROGRAM_FILE,
    load_program,
    program_from_json,
    program_json,
)
from services.tiers.domain.model import (
    QUALIFYING_REFERRALS,
    QUALIFYING_SPEND,
    QUALIFYING_VISITS,
    CustomerTier,
    Match,
    Program,
    QualifyingActivity,
    SpendBasis,
    Standing,
    TierDefinition,
    downgrade_warning,
    progress,
    standing,
    tier_after_review,
    to_keep_tier,
    upgrade_for,
)

AT = datetime(2026, 3, 1, 12, tzinfo=UTC)

# Gold at 2,000 spend OR 5 referrals; platinum at 5,000 spend AND 20 visits.
ROUTES = Program(
    tiers=(
        TierDefinition("bronze", Decimal(0)),
        TierDefinition("silver", Decimal(500), visits=10),
        TierDefinition("gold", Decimal(2000), referrals=5),
        TierDefinition("platinum", Decimal(5000), visits=20, match=Match.ALL),
    ),
    referral_return_window_days=14,
)


def routes_yaml(tmp_path: Path, tiers: object, **more: object) -> Path:
    document = yaml.safe_load(DEFAULT_PROGRAM_FILE.read_text())
    document.update(tiers=tiers, **more)
    path = tmp_path / "program.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


ROUTES_TIERS = [
    {"name": "bronze", "threshold": "0"},
    {"name": "silver", "threshold": "500", "visits": 10},
    {"name": "gold", "threshold": "2000", "referrals": 5},
    {"name": "platinum", "threshold": "5000", "visits": 20, "match": "all"},
]


# -- the program file ------------------------------------------------------------------------


def test_a_program_with_routes_loads(tmp_path: Path) -> None:
    path = routes_yaml(tmp_path, ROUTES_TIERS, referral_return_window_days=14)
    assert load_program(path) == ROUTES


def test_a_tier_reached_by_referrals_alone_loads_without_a_threshold(tmp_path: Path) -> None:
    tiers = [{"name": "bronze", "threshold": "0"}, {"name": "silver", "referrals": 3}]
    silver = load_program(routes_yaml(tmp_path, tiers)).tier("silver")
    assert (silver.spend_route, silver.spend_threshold, silver.referrals) == (False, None, 3)
    assert silver.reached_by(Standing(spend=Decimal(10**9))) is False
    assert silver.reached_by(Standing(referrals=3)) is True


@pytest.mark.parametrize(
    ("tiers", "more", "field"),
    [
        ([{"name": "bronze", "threshold": "0"}, {"name": "silver"}], {}, "tiers[1]"),
        (
            [{"name": "bronze", "threshold": "0", "referrals": 1}, {"name": "silver", "visits": 2}],
            {},
            "tiers[0]",
        ),
        (
            [
                {"name": "bronze", "threshold": "0"},
                {"name": "silver", "referrals": 5},
                {"name": "gold", "referrals": 5},
            ],
            {},
            "tiers[].referrals",
        ),
        (
            [
                {"name": "bronze", "threshold": "0"},
                {"name": "silver", "visits": 9},
                {"name": "gold", "visits": 3},
            ],
            {},
            "tiers[].visits",
        ),
        (ROUTES_TIERS, {"referral_return_window_days": -1}, "referral_return_window_days"),
    ],
)
def test_a_malformed_route_is_refused_by_its_field_name(
    tmp_path: Path, tiers: object, more: dict[str, object], field: str
) -> None:
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
        load_program(routes_yaml(tmp_path, tiers, **more))


@pytest.mark.parametrize(
    "entry",
    [
        {"name": "silver", "threshold": "500", "referrals": 0},
        {"name": "silver", "threshold": "500", "visits": "many"},
        {"name": "silver", "threshold": "500", "match": "either"},
        {"name": "silver", "threshold": "500", "friends": 3},
    ],
)
def test_a_route_of_the_wrong_shape_is_refused(tmp_path: Path, entry: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match=r"tiers\.1\."):
        load_program(routes_yaml(tmp_path, [{"name": "bronze", "threshold": "0"}, entry]))


def test_a_spend_only_program_keeps_its_stored_text() -> None:
    """What a replay's switch stored before issue 25 reads back as the same program, and a
    spend-only program is written as it was (a replay of it under way resumes)."""
    document = json.loads(program_json(Program()))
    assert set(document) == {
        "basis",
        "currency",
        "downgrade_policy",
        "downgrade_warning_days",
        "qualifying_window_days",
        "review_period_days",
        "tiers",
        "time_zone",
    }
    assert document["tiers"][1] == {"name": "silver", "threshold": "500"}
    assert program_from_json(program_json(Program())) == Program()


def test_a_program_with_routes_reads_back_as_itself() -> None:
    assert program_from_json(program_json(ROUTES)) == ROUTES
    silver_by_referrals = Program(
        tiers=(
            TierDefinition("bronze", Decimal(0)),
            TierDefinition("silver", Decimal(0), referrals=2, spend_route=False),
        )
    )
    assert program_from_json(program_json(silver_by_referrals)) == silver_by_referrals


# -- what reaches a tier ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spend", "referrals", "visits", "tier"),
    [
        ("499", 0, 9, "bronze"),
        ("500", 0, 0, "silver"),  # any: spend alone
        ("0", 0, 10, "silver"),  # any: visits alone
        ("0", 5, 0, "gold"),  # gold by referrals alone
        ("1999.99", 4, 19, "silver"),
        ("5000", 0, 19, "gold"),  # platinum needs both: spend gives gold
        ("4999.99", 0, 40, "gold"),  # platinum needs 5,000 spend too
        ("5000", 0, 20, "platinum"),
    ],
)
def test_any_route_or_all_of_them_reach_a_tier(
    spend: str, referrals: int, visits: int, tier: str
) -> None:
    assert ROUTES.tier_for(Standing(Decimal(spend), referrals, visits)).name == tier


def test_progress_names_each_route_of_the_next_tier() -> None:
    ahead = progress(ROUTES, "silver", Standing(Decimal("1660"), 3, 12))
    assert (ahead.next_tier, ahead.amount_to_next_tier) == ("gold", Decimal(340))
    assert (ahead.referrals_to_next_tier, ahead.visits_to_next_tier) == (2, None)
    assert ahead.next_tier_match is Match.ANY
    top = progress(ROUTES, "gold", Standing(Decimal("5200"), 3, 12))
    assert (top.amount_to_next_tier, top.visits_to_next_tier, top.referrals_to_next_tier) == (
        Decimal(0),
        8,
        None,
    )
    assert top.next_tier_match is Match.ALL
    nothing_above = progress(ROUTES, "platinum", Standing())
    assert nothing_above.next_tier is None
    assert nothing_above.amount_to_next_tier is None
    assert nothing_above.referrals_to_next_tier is None


def test_a_spend_only_program_shows_no_other_route() -> None:
    ahead = progress(Program(), "bronze", Decimal(100))
    assert (ahead.amount_to_next_tier, ahead.referrals_to_next_tier) == (Decimal(400), None)
    assert ahead.visits_to_next_tier is None


def _activity(
    n: int, at: datetime, amount: str = "0", *, visits: int = 0, referrals: int = 0
) -> QualifyingActivity:
    return QualifyingActivity(
        f"a{n}", "c1", Decimal(amount), at, visits=visits, referrals=referrals
    )


def test_the_standing_counts_each_route_over_the_rolling_basis() -> None:
    activities = [
        _activity(1, AT - timedelta(days=400), "100", visits=1),  # out of the year
        _activity(2, AT - timedelta(days=100), "300", visits=1),
        _activity(3, AT - timedelta(days=50), referrals=1),
        _activity(4, AT - timedelta(days=10), "-300", visits=-1),  # wholly refunded
        _activity(5, AT, "20", visits=1),
    ]
    assert standing(ROUTES, activities, AT) == Standing(Decimal(20), 1, 1)


def test_under_the_calendar_year_each_route_takes_the_better_year() -> None:
    program = Program(basis=SpendBasis.CALENDAR_YEAR)
    last_year = datetime(2025, 6, 1, tzinfo=UTC)
    activities = [
        _activity(1, last_year, "900", visits=1),
        _activity(2, last_year, referrals=1),
        _activity(3, AT, referrals=1),
        _activity(4, AT + timedelta(days=1), referrals=1),
        _activity(5, AT, "30", visits=1),
    ]
    assert standing(program, activities, AT + timedelta(days=2)) == Standing(Decimal(900), 2, 1)


def test_an_upgrade_names_the_route_that_reached_the_tier() -> None:
    bronze = CustomerTier("c1", "bronze", since=AT - timedelta(days=30), review_at=AT)
    by_referrals = [_activity(n, AT - timedelta(days=n), referrals=1) for n in range(5)]
    change = upgrade_for(ROUTES, bronze, by_referrals, AT - timedelta(days=4))
    assert change is not None
    assert (change.to_tier, change.reason, change.effective_at) == (
        "gold",
        QUALIFYING_REFERRALS,
        AT,
    )
    by_visits = [_activity(n, AT - timedelta(hours=n), "1", visits=1) for n in range(10)]
    change = upgrade_for(ROUTES, bronze, by_visits, AT)
    assert change is not None and (change.to_tier, change.reason) == ("silver", QUALIFYING_VISITS)
    by_spend = [_activity(0, AT, "600", visits=1)]
    change = upgrade_for(ROUTES, bronze, by_spend, AT)
    assert change is not None and change.reason == QUALIFYING_SPEND


def test_a_review_keeps_a_tier_held_by_any_of_its_routes() -> None:
    gold = CustomerTier("c1", "gold", since=AT - timedelta(days=365), review_at=AT)
    assert tier_after_review(ROUTES, gold, Standing(Decimal(0), 5, 0)).name == "gold"
    assert tier_after_review(ROUTES, gold, Standing(Decimal(0), 4, 10)).name == "silver"
    kept = [_activity(n, AT - timedelta(days=n + 1), referrals=1) for n in range(5)]
    assert to_keep_tier(ROUTES, gold, kept).amount == Decimal(0)
    short = kept[:3]
    gaps = to_keep_tier(ROUTES, gold, short)
    assert (gaps.amount, gaps.referrals, gaps.visits) == (Decimal(2000), 2, None)


def test_a_warning_names_each_route_that_would_keep_the_tier() -> None:
    gold = CustomerTier("c1", "gold", since=AT - timedelta(days=365), review_at=AT)
    known = [
        _activity(1, AT - timedelta(days=60), "1660", visits=1),
        _activity(2, AT - timedelta(days=50), referrals=1),
        _activity(3, AT - timedelta(days=40), referrals=1),
        _activity(4, AT - timedelta(days=35), referrals=1),
    ]
    warning = downgrade_warning(ROUTES, gold, known, AT - timedelta(days=20))
    assert warning is not None
    assert (warning.amount_to_keep_tier, warning.referrals_to_keep_tier) == (Decimal(340), 2)
    assert (warning.visits_to_keep_tier, warning.spend_route, warning.match) == (
        None,
        True,
        Match.ANY,
    )


counts = st.integers(0, 30)
money = st.decimals(min_value=0, max_value=8000, places=2)


@given(spend=money, referrals=counts, visits=counts, more=counts)
def test_more_of_any_route_never_lowers_the_tier(
    spend: Decimal, referrals: int, visits: int, more: int
) -> None:
    before = ROUTES.rank(ROUTES.tier_for(Standing(spend, referrals, visits)).name)
    for after in (
        Standing(spend + more, referrals, visits),
        Standing(spend, referrals + more, visits),
        Standing(spend, referrals, visits + more),
    ):
        assert ROUTES.rank(ROUTES.tier_for(after).name) >= before


@given(spend=money, referrals=counts, visits=counts)
def test_the_gaps_to_the_next_tier_are_exactly_what_reaches_it(
    spend: Decimal, referrals: int, visits: int
) -> None:
    """Closing any one route's gap (any) or every gap (all) reaches the next tier."""
    now = Standing(spend, referrals, visits)
    tier = ROUTES.tier_for(now)
    above = ROUTES.tier_above(tier.name)
    if above is None:
        return
    gaps = above.gaps(now)
    closed = [
        Standing(spend + (gaps.amount or 0), referrals, visits) if gaps.amount else None,
        Standing(spend, referrals + (gaps.referrals or 0), visits) if gaps.referrals else None,
        Standing(spend, referrals, visits + (gaps.visits or 0)) if gaps.visits else None,
    ]
    if above.match is Match.ALL:
        everything = Standing(
            spend + (gaps.amount or 0),
            referrals + (gaps.referrals or 0),
            visits + (gaps.visits or 0),
        )
        assert above.reached_by(everything)
    else:
        assert all(above.reached_by(s) for s in closed if s is not None)
