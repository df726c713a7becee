"""The tier messages name each route's progress (issue 25): what the notifications handler
takes from a tier event of a program with routes, and the words it becomes in each locale.
A spend-only program's messages are what they were."""

from datetime import timedelta
from decimal import Decimal

import pytest

from services.notifications.domain.templates import render
from services.notifications.handlers import Context, apply_batch
from shared.messaging import events
from shared.messaging.events import CloudEvent, new_event
from shared.messaging.outbox import CollectingSink
from tests.support.fakes.notifications import NOW, FakeNotifications

REVIEW_AT = NOW + timedelta(days=30)


async def params_of(event: CloudEvent) -> dict[str, object]:
    notifications = FakeNotifications()
    await apply_batch(
        [event],
        Context(
            notifications=notifications,
            sink=CollectingSink(),
            now=NOW,
            digest_window=timedelta(minutes=10),
        ),
    )
    return dict(notifications.only().params)


def changed(**routes: object) -> CloudEvent:
    return new_event(
        events.TierChanged(
            customer_id="c1",
            from_tier="silver",
            to_tier="gold",
            direction="up",
            reason="qualifying_referrals",
            effective_at=NOW,
            review_at=NOW + timedelta(days=365),
            **routes,
        ),
        source="tiers",
        subject="c1",
        time=NOW,
    )


def warning(**routes: object) -> CloudEvent:
    return new_event(
        events.TierDowngradeWarning(
            customer_id="c1",
            tier="gold",
            would_become="silver",
            review_at=REVIEW_AT,
            amount_to_keep_tier=Decimal("340"),
            **routes,
        ),
        source="tiers",
        subject="c1",
        time=NOW,
    )


async def test_a_tier_up_names_the_way_on_by_each_route() -> None:
    params = await params_of(
        changed(
            next_tier="platinum",
            amount_to_next_tier=Decimal("340"),
            referrals_to_next_tier=2,
            next_tier_match="any",
        )
    )
    assert params == {
        "tier": "gold",
        "from_tier": "silver",
        "next_tier": "platinum",
        "route_match": "any",
        "route_amount": "340",
        "route_referrals": 2,
        "currency": "EUR",
    }
    body = render("tier_up", "en", params).body
    assert "Next: 2 more friends or €340.00 more to Platinum." in body


async def test_a_spend_only_tier_up_and_warning_are_unchanged() -> None:
    assert await params_of(changed()) == {"tier": "gold", "from_tier": "silver"}
    params = await params_of(warning())
    assert "route_match" not in params
    body = render("tier_downgrade_warning", "en", params).body
    assert "spend €340.00 more by" in body
    assert "Next:" not in render("tier_up", "en", {"tier": "gold", "from_tier": "silver"}).body


async def test_a_warning_names_what_keeps_the_tier_by_each_route() -> None:
    params = await params_of(
        warning(
            keep_by_spend=False, referrals_to_keep_tier=1, visits_to_keep_tier=3, keep_match="all"
        )
    )
    assert (params["route_referrals"], params["route_visits"], params["route_match"]) == (
        1,
        3,
        "all",
    )
    assert "route_amount" not in params  # the tier has no spend route
    body = render("tier_downgrade_warning", "en", params).body
    assert "1 more friend and 3 more visits by" in body
    assert "spend" not in body


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        ("it", "2 amici in più o 340,00\xa0€ di acquisti in più per il livello Platino"),
        ("fi", "2 ystävää lisää tai 340,00\xa0€ ostoksia lisää tasoon Platina"),
        ("pl", "jeszcze 2 znajomych lub jeszcze 340,00\xa0€ zakupów do poziomu Platynowy"),
    ],
)
def test_each_locale_words_the_routes(locale: str, words: str) -> None:
    params = {
        "tier": "gold",
        "from_tier": "silver",
        "next_tier": "platinum",
        "route_match": "any",
        "route_amount": "340",
        "route_referrals": 2,
        "currency": "EUR",
    }
    assert words in render("tier_up", locale, params).body
