"""Changing rules in force (PATCH): the patch schemas refuse unknown fields, refuse by name a
field that would change what members' progress means and never clear a required one; a patch
applied keeps what it may not change and is validated again by the domain (a 422 naming the
field); an unknown rule is a 404 and an ended one a 409."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from services.engagement.api.schemas import (
    ChallengePatchIn,
    RulePatchIn,
    StampCardPatchIn,
    SurprisePatchIn,
)
from services.engagement.domain.challenges import ChallengeRule, Goal
from services.engagement.domain.model import Reward, Scope, Window
from services.engagement.domain.stamps import StampCardRule
from services.engagement.domain.surprises import SurpriseRule
from services.engagement.ports import LockedRule
from services.engagement.usecases.rules import in_force, patched
from shared.web.problems import Problem

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
STARTS = NOW - timedelta(days=10)
ENDS = NOW + timedelta(days=20)

CARD = StampCardRule(
    card_id="card-1",
    name="Tenth coffee free",
    stamps_required=10,
    per="item",
    scope=Scope(partner_id="caffe-nord", category="coffee"),
    reward=Reward(points=50),
    window=Window(STARTS, None),
    min_amount=Decimal("2.00"),
)
CHALLENGE = ChallengeRule(
    challenge_id="challenge-1",
    name="Five visits in May",
    goal=Goal(kind="purchases", target=Decimal(5), category=None, partner_id=None),
    window=Window(STARTS, ENDS),
    reward=Reward(points=100),
    badge="Regular",
)
SURPRISE = SurpriseRule(
    surprise_id="surprise-1",
    name="A coffee on us",
    chance=Decimal("0.02"),
    reward=Reward(points=40),
    scope=Scope(category="coffee"),
    window=Window(STARTS, ENDS),
    daily_budget=400,
)

FROZEN: list[tuple[type[RulePatchIn], str, object]] = [
    (StampCardPatchIn, "stamps_required", 5),
    (StampCardPatchIn, "per", "purchase"),
    (StampCardPatchIn, "category", "tea"),
    (StampCardPatchIn, "partner_id", "caffe-sud"),
    (StampCardPatchIn, "store_id", "milano-1"),
    (StampCardPatchIn, "starts_at", NOW.isoformat()),
    (ChallengePatchIn, "goal", {"kind": "purchases", "target": 3}),
    (ChallengePatchIn, "starts_at", NOW.isoformat()),
    (SurprisePatchIn, "category", "tea"),
    (SurprisePatchIn, "partner_id", "caffe-sud"),
    (SurprisePatchIn, "store_id", "milano-1"),
    (SurprisePatchIn, "starts_at", NOW.isoformat()),
]


def refusal(schema: type[BaseModel], body: dict[str, Any]) -> str:
    """What the schema says of a body it refuses: each error's location and message."""
    with pytest.raises(ValidationError) as refused:
        schema.model_validate(body)
    return " | ".join(f"{e['loc']} {e['msg']}" for e in refused.value.errors())


@pytest.mark.parametrize(("schema", "field", "value"), FROZEN)
def test_a_field_that_would_rewrite_members_progress_is_refused_by_name(
    schema: type[RulePatchIn], field: str, value: object
) -> None:
    for sent in (value, None):  # even "cleared"
        said = refusal(schema, {"name": "Renamed", field: sent})
        assert f"{field} cannot be changed" in said
        assert "create a new one" in said


@pytest.mark.parametrize("schema", [StampCardPatchIn, ChallengePatchIn, SurprisePatchIn])
def test_an_unknown_field_is_refused_by_name(schema: type[RulePatchIn]) -> None:
    said = refusal(schema, {"name": "Renamed", "colour": "red"})
    assert "colour" in said and "Extra inputs are not permitted" in said


@pytest.mark.parametrize(
    ("schema", "field"),
    [
        (StampCardPatchIn, "name"),
        (StampCardPatchIn, "reward"),
        (ChallengePatchIn, "name"),
        (ChallengePatchIn, "reward"),
        (ChallengePatchIn, "ends_at"),
        (SurprisePatchIn, "name"),
        (SurprisePatchIn, "reward"),
        (SurprisePatchIn, "chance"),
    ],
)
def test_a_required_field_cannot_be_cleared(schema: type[RulePatchIn], field: str) -> None:
    assert f"{field} cannot be null" in refusal(schema, {field: None})


def test_an_optional_field_sent_as_null_is_cleared_and_one_left_out_is_kept() -> None:
    card = patched("stamp-card", CARD, StampCardPatchIn.model_validate({"min_amount": None}))
    assert card.min_amount is None and card.window == CARD.window and card.name == CARD.name
    surprise = patched(
        "surprise",
        SURPRISE,
        SurprisePatchIn.model_validate({"daily_budget": None, "ends_at": None}),
    )
    assert (surprise.daily_budget, surprise.window.ends_at) == (None, None)
    assert surprise.window.starts_at == STARTS and surprise.chance == SURPRISE.chance
    challenge = patched("challenge", CHALLENGE, ChallengePatchIn.model_validate({"badge": None}))
    assert challenge.badge is None and challenge.reward == CHALLENGE.reward


def test_a_surprises_chance_is_a_string_as_on_create() -> None:
    assert "as a string" in refusal(SurprisePatchIn, {"chance": 0.5})
    assert SurprisePatchIn.model_validate({"chance": "0.5"}).chance == Decimal("0.5")
    assert "chance" in refusal(SurprisePatchIn, {"chance": "1.5"})


def test_a_patch_changes_what_it_names_and_keeps_the_rest() -> None:
    new_end = NOW + timedelta(days=5)
    patch = StampCardPatchIn.model_validate(
        {
            "name": "Eighth coffee free",
            "reward": {"points": 80},
            "ends_at": new_end.isoformat(),
            "min_tier": "silver",
        }
    )
    card = patched("stamp-card", CARD, patch)
    assert (card.name, card.reward, card.min_tier) == ("Eighth coffee free", Reward(80), "silver")
    assert card.window == Window(STARTS, new_end)
    assert (card.card_id, card.stamps_required, card.per, card.scope) == (
        CARD.card_id,
        CARD.stamps_required,
        CARD.per,
        CARD.scope,
    )
    assert card.min_amount == CARD.min_amount
    surprise = patched(
        "surprise",
        SURPRISE,
        SurprisePatchIn.model_validate(
            {"chance": "1", "reward": {"reward_id": "pastry"}, "daily_budget": None}
        ),
    )
    assert (surprise.chance, surprise.reward) == (Decimal(1), Reward(reward_id="pastry"))
    assert surprise.scope == SURPRISE.scope


@pytest.mark.parametrize(
    ("kind", "rule", "patch", "field"),
    [
        (
            "stamp-card",
            CARD,
            StampCardPatchIn.model_validate({"ends_at": STARTS.isoformat()}),
            "ends_at",
        ),
        (
            "challenge",
            CHALLENGE,
            ChallengePatchIn.model_validate({"ends_at": (STARTS - timedelta(1)).isoformat()}),
            "ends_at",
        ),
        (
            "surprise",
            SURPRISE,
            SurprisePatchIn.model_validate({"reward": {"points": 500}}),
            "daily_budget",
        ),
        (
            "surprise",
            SURPRISE,
            SurprisePatchIn.model_validate({"reward": {"reward_id": "pastry"}}),
            "daily_budget",
        ),
    ],
)
def test_the_domain_validates_the_patched_rule_and_names_the_field(
    kind: str, rule: StampCardRule | ChallengeRule | SurpriseRule, patch: RulePatchIn, field: str
) -> None:
    with pytest.raises(Problem) as refused:
        patched(kind, rule, patch)  # type: ignore[type-var]
    assert refused.value.status == 422
    assert refused.value.detail.startswith(f"{field}:")
    assert refused.value.slug == f"invalid-{kind}"


def test_an_unknown_rule_is_a_404_and_an_ended_one_a_409() -> None:
    with pytest.raises(Problem) as unknown:
        in_force("stamp-card", "nope", None)
    assert (unknown.value.status, unknown.value.slug) == (404, "unknown-stamp-card")
    with pytest.raises(Problem) as ended:
        in_force("challenge", "challenge-1", LockedRule(CHALLENGE, ended_at=NOW))
    assert (ended.value.status, ended.value.slug) == (409, "challenge-ended")
    assert in_force("surprise", "surprise-1", LockedRule(SURPRISE, ended_at=None)) is SURPRISE


_CHANGES = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["Renamed", "Coffee card"]),
        "reward": st.one_of(
            st.integers(1, 1_000_000).map(lambda p: {"points": p}),
            st.just({"reward_id": "pastry"}),
        ),
        "ends_at": st.one_of(
            st.none(),
            st.integers(-20, 40).map(lambda d: (NOW + timedelta(days=d)).isoformat()),
        ),
        "min_tier": st.sampled_from([None, "bronze", "silver", "gold", "platinum"]),
        "min_amount": st.one_of(st.none(), st.sampled_from(["0.01", "2.50", "100"])),
    },
)


@given(_CHANGES)
def test_a_patch_never_changes_what_members_progress_means(body: dict[str, Any]) -> None:
    patch = StampCardPatchIn.model_validate(body)
    try:
        card = patched("stamp-card", CARD, patch)
    except Problem as refused:  # an end not after the start
        assert (refused.status, refused.detail[:8]) == (422, "ends_at:")
        return
    assert (card.card_id, card.stamps_required, card.per, card.scope) == (
        CARD.card_id,
        CARD.stamps_required,
        CARD.per,
        CARD.scope,
    )
    assert card.window.starts_at == CARD.window.starts_at
    for field in ("name", "min_tier"):
        assert getattr(card, field) == body.get(field, getattr(CARD, field))
    if "reward" in body:
        assert card.reward == Reward(**body["reward"])
    else:
        assert card.reward == CARD.reward
