"""The features' rules, one example member each (the ones docs/insights.md shows)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.insights.domain.activity import activity_of, rhythm_variation
from services.insights.domain.features import features, scored
from services.insights.domain.model import (
    Breakpoints,
    Feedback,
    MemberFacts,
    PointsUse,
    Purchase,
    Rfm,
    Rules,
)

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
RULES = Rules()
QUINTILES = Breakpoints(
    recency_days=(10.0, 30.0, 60.0, 120.0),
    frequency=(1.0, 2.0, 4.0, 8.0),
    monetary=(20.0, 50.0, 120.0, 300.0),
    as_of=NOW,
    members=1000,
)


def bought(days_ago: float, total: str = "20.00", **fields: object) -> Purchase:
    at = NOW - timedelta(days=days_ago)
    return Purchase(
        key=f"p:{days_ago}",
        occurred_at=at,
        partner_id=str(fields.pop("partner_id", "cafe")),
        store_id=fields.pop("store_id", None),  # type: ignore[arg-type]
        total=Decimal(total),
        **fields,  # type: ignore[arg-type]
    )


def member(*purchases: Purchase, enrolled_days_ago: int = 400, **fields: object) -> MemberFacts:
    return MemberFacts(
        customer_id="c1",
        enrolled_at=NOW - timedelta(days=enrolled_days_ago),
        activity=activity_of(purchases, NOW, RULES.window, RULES.lapse),
        **fields,  # type: ignore[arg-type]
    )


def types_of(facts: MemberFacts) -> dict[str, tuple[str, ...]]:
    found = features(facts, NOW, RULES, QUINTILES)
    return {kind.type: kind.reasons for kind in found.loyalty_types}


def test_rfm_counts_the_window_and_leaves_out_whole_refunds() -> None:
    facts = member(
        bought(3, "30.00"),
        bought(10, "50.00", refunded=Decimal("20.00")),
        bought(20, "40.00", refunded=Decimal("40.00")),  # wholly refunded: no visit
        bought(400, "99.00"),  # outside the window
    )
    rfm = features(facts, NOW, RULES, QUINTILES).rfm
    assert (rfm.recency_days, rfm.frequency, rfm.monetary) == (3, 2, Decimal("60.00"))
    assert (rfm.r, rfm.f, rfm.m) == (5, 2, 3)


def test_scores_run_one_to_five_by_the_quintiles() -> None:
    best = scored(Rfm(1, 20, Decimal("1000")), QUINTILES)
    worst = scored(Rfm(300, 1, Decimal("5")), QUINTILES)
    assert (best.r, best.f, best.m) == (5, 5, 5)
    assert (worst.r, worst.f, worst.m) == (1, 1, 1)
    assert scored(Rfm(None, 0, Decimal(0)), QUINTILES).r == 1
    assert scored(Rfm(3, 2, Decimal(1)), None).r is None  # no run of the job yet


def test_lifecycle_stages() -> None:
    def stage(facts: MemberFacts) -> str:
        return features(facts, NOW, RULES, QUINTILES).lifecycle

    assert stage(member(enrolled_days_ago=5)) == "new"
    assert stage(member(bought(2), enrolled_days_ago=10)) == "new"
    assert stage(member(bought(5))) == "active"
    assert stage(member(bought(50))) == "at_risk"
    assert stage(member(bought(90))) == "lapsed"
    assert stage(member(enrolled_days_ago=100)) == "lapsed"  # never bought
    assert stage(member(bought(200), bought(10))) == "won_back"
    assert stage(member(bought(200), bought(70))) == "at_risk"
    assert stage(member(bought(300), bought(100), bought(5))) == "won_back"


def test_won_back_ends_after_its_days() -> None:
    facts = member(bought(200), bought(61), bought(1))
    assert features(facts, NOW, RULES, QUINTILES).lifecycle == "active"


def test_happy_buys_regularly_without_complaint_or_much_use_of_the_program() -> None:
    regular = member(*(bought(d) for d in (5, 30, 60, 90)), points=PointsUse(200, 10, 1))
    assert "happy" in types_of(regular)
    complained = MemberFacts(**{**regular.__dict__, "feedback": (Feedback(NOW, "nps", 3),)})
    assert "happy" not in types_of(complained)
    redeeming = MemberFacts(**{**regular.__dict__, "points": PointsUse(200, 150, 3)})
    assert "happy" not in types_of(redeeming)


def test_price_buys_inside_campaigns() -> None:
    facts = member(bought(5, in_campaign=True), bought(9, in_campaign=True), bought(20))
    assert types_of(facts)["price"] == ("2 of 3 purchases inside campaigns (67%)",)
    assert "price" not in types_of(member(bought(5, in_campaign=True), bought(9), bought(20)))


def test_program_redeems_much_of_what_it_earns() -> None:
    facts = member(bought(5), points=PointsUse(earned=400, redeemed=300, redemptions=2))
    assert types_of(facts)["program"][0] == "redeemed 75% of 400 points earned"
    assert "program" not in types_of(member(bought(5), points=PointsUse(400, 300, 1)))


def test_convenience_one_place_a_steady_rhythm() -> None:
    steady = member(*(bought(d, store_id="s1") for d in (7, 14, 21, 28, 35)))
    assert types_of(steady)["convenience"][0] == "5 of 5 purchases at store cafe/s1 (100%)"
    erratic = member(*(bought(d) for d in (1, 2, 3, 60, 200)))
    assert "convenience" not in types_of(erratic)


def test_rhythm_variation_is_zero_for_clockwork() -> None:
    assert rhythm_variation([bought(d) for d in (30, 20, 10)]) == 0


def test_perks_buys_sporadically_and_uses_free_perks() -> None:
    assert "perks" in types_of(member(bought(40), perks=3))
    assert "perks" not in types_of(member(*(bought(d) for d in (1, 2, 3, 4)), perks=3))


def test_truly_loyal_frequent_valuable_and_an_advocate() -> None:
    many = [bought(d, "80.00") for d in range(1, 60, 5)]
    assert types_of(member(*many, referrals=2))["truly_loyal"] == (
        "frequency score 5",
        "monetary score 5",
        "referred 2 friends",
    )
    promoter = member(*many, feedback=(Feedback(NOW, "nps", 10),))
    assert "truly_loyal" in types_of(promoter)
    assert "truly_loyal" not in types_of(member(*many))


def test_a_member_may_have_no_type() -> None:
    assert types_of(member(bought(100))) == {}


def test_the_tier_defaults_to_the_entry_tier() -> None:
    assert features(member(), NOW, RULES, None).tier == "bronze"
    assert features(member(tier="gold"), NOW, RULES, None).tier == "gold"
