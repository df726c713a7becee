"""Engagement's messages (product §8): a full stamp card, a challenge met and its badge, a
surprise, a birthday. The templates in every locale with the events' fields, which rewards
are told (surprise and birthday only), and one message per challenge whatever the order and
the batches of its `challenge.completed` and `badge.earned`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.notifications.domain import engagement
from services.notifications.domain.model import Channel, Contact, DeliveryStatus, Lane, lane_of
from services.notifications.domain.templates import TEMPLATES, render, render_sms
from services.notifications.handlers import Context, achievement_id, apply_batch
from shared.messaging import events
from shared.messaging.events import CloudEvent, derived_event_id
from shared.messaging.outbox import CollectingSink
from tests.support import factories
from tests.support.fakes.notifications import NOW, FakeNotifications

LOCALES = ("en", "it", "fi", "pl")
ENGAGEMENT_TEMPLATES = (
    engagement.STAMP_CARD_COMPLETED,
    engagement.CHALLENGE_COMPLETED,
    engagement.BADGE_EARNED,
    engagement.SURPRISE,
    engagement.BIRTHDAY,
)
# What the member reads for 40 points, per locale (Babel's number format and plural).
FORTY_POINTS = {"en": "40 points", "it": "40 punti", "fi": "40 pistettä", "pl": "40 punktów"}


async def apply(notifications: FakeNotifications, *batch: CloudEvent) -> None:
    await apply_batch(batch, Context(notifications=notifications, sink=CollectingSink(), now=NOW))


def texting(customer_id: str = "c1") -> Contact:
    """A stored contact reachable by email and SMS."""
    return Contact(
        customer_id=customer_id,
        locale="en",
        time_zone="UTC",
        updated_at=NOW,
        email="ada@example.com",
        phone="+393331234567",
        consent_email=True,
        consent_sms=True,
    )


def templates_of(notifications: FakeNotifications) -> list[tuple[str, Channel]]:
    return sorted((d.template, d.channel) for d in notifications.deliveries.values())


# -- templates -------------------------------------------------------------------------------


def test_every_engagement_template_exists_in_every_locale() -> None:
    for name in ENGAGEMENT_TEMPLATES:
        assert set(TEMPLATES[name]) == set(LOCALES)


@pytest.mark.parametrize("locale", LOCALES)
def test_a_full_stamp_card_names_the_card_its_stamps_and_the_count(locale: str) -> None:
    params = engagement.stamp_card_params(
        card_id="card-1", name="Caffè & co", stamps_required=9, completed_count=3
    )
    message = render(engagement.STAMP_CARD_COMPLETED, locale, params)
    assert message.locale == locale
    assert "Caffè & co" in message.subject and "Caffè & co" in message.body
    assert "Caffè &amp; co" in message.html  # escaped in the HTML, not in the text
    assert "9" in message.body and "3" in message.body
    assert "{" not in message.subject + message.body + message.html


@pytest.mark.parametrize("locale", LOCALES)
def test_a_first_full_card_does_not_count_the_cards(locale: str) -> None:
    first = engagement.stamp_card_params(
        card_id="card-1", name="Coffee", stamps_required=9, completed_count=1
    )
    third = {**first, "completed_count": 3}
    assert "3" not in render(engagement.STAMP_CARD_COMPLETED, locale, first).body
    assert "3" in render(engagement.STAMP_CARD_COMPLETED, locale, third).body


@pytest.mark.parametrize(
    ("count", "shown"), [(2, "2 pełne karty"), (5, "5 pełnych kart"), (22, "22 pełne karty")]
)
def test_the_polish_card_count_takes_its_plural_form(count: int, shown: str) -> None:
    params = engagement.stamp_card_params(
        card_id="card-1", name="Kawa", stamps_required=9, completed_count=count
    )
    assert shown in render(engagement.STAMP_CARD_COMPLETED, "pl", params).body


@pytest.mark.parametrize("locale", LOCALES)
def test_a_challenge_names_itself_and_its_badge_when_it_has_one(locale: str) -> None:
    with_badge = engagement.challenge_params(
        challenge_id="ch-1", name="Five visits", badge="Regular", rewarded=True
    )
    without = engagement.challenge_params(
        challenge_id="ch-1", name="Five visits", badge=None, rewarded=False
    )
    told = render(engagement.CHALLENGE_COMPLETED, locale, with_badge)
    assert "Five visits" in told.subject and "Regular" in told.body
    bare = render(engagement.CHALLENGE_COMPLETED, locale, without)
    assert "Regular" not in bare.body
    # No reward: no paragraph about one.
    assert len(bare.body.split("\n\n")) == len(told.body.split("\n\n")) - 1


@pytest.mark.parametrize("locale", LOCALES)
def test_a_badge_is_named(locale: str) -> None:
    params = engagement.badge_params(challenge_id="ch-1", badge="Night owl")
    message = render(engagement.BADGE_EARNED, locale, params)
    assert "Night owl" in message.subject and "Night owl" in message.body


@pytest.mark.parametrize("template", [engagement.SURPRISE, engagement.BIRTHDAY])
@pytest.mark.parametrize("locale", LOCALES)
def test_a_surprise_and_a_birthday_name_their_points(template: str, locale: str) -> None:
    params = engagement.granted_params(rule_id="s-1", name="Lucky day", points=40, reward_id=None)
    body = render(template, locale, params).body.replace("\u00a0", " ")
    assert FORTY_POINTS[locale] in body
    if template == engagement.SURPRISE:
        assert "Lucky day" in body


@pytest.mark.parametrize("template", [engagement.SURPRISE, engagement.BIRTHDAY])
@pytest.mark.parametrize("locale", LOCALES)
def test_a_catalogue_reward_is_told_without_points(template: str, locale: str) -> None:
    params = engagement.granted_params(
        rule_id="s-1", name="Lucky day", points=None, reward_id="mug"
    )
    with_points = {**params, "points": 40}
    with_points.pop("reward_id")
    body = render(template, locale, params).body
    assert "40" not in body
    assert body != render(template, locale, with_points).body


@pytest.mark.parametrize("locale", LOCALES)
def test_every_engagement_message_has_a_short_sms(locale: str) -> None:
    params = {
        **engagement.stamp_card_params(
            card_id="card-1", name="Coffee card", stamps_required=10, completed_count=2
        ),
        "badge": "Explorer",
        "points": 40,
    }
    for name in ENGAGEMENT_TEMPLATES:
        sms = render_sms(name, locale, params)
        assert sms.body.startswith("Fedelta: ") and len(sms.body) <= 160
        assert "{" not in sms.body and "\n" not in sms.body


def test_answers_to_a_purchase_are_transactional_and_the_birthday_bulk() -> None:
    for name in ENGAGEMENT_TEMPLATES:
        expected = Lane.BULK if name == engagement.BIRTHDAY else Lane.TRANSACTIONAL
        assert lane_of(name) is expected


# -- which rewards are told ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "template"),
    [
        ("surprise", engagement.SURPRISE),
        ("birthday", engagement.BIRTHDAY),
        ("stamp_card", None),
        ("challenge", None),
        ("feedback", None),
    ],
)
def test_only_a_surprise_and_a_birthday_are_told_by_their_reward(
    reason: str, template: str | None
) -> None:
    assert engagement.reward_template(reason) == template


def test_the_reward_params_carry_points_or_the_reward_never_both() -> None:
    assert engagement.reward_params(40, None) == {"rewarded": True, "points": 40}
    assert engagement.reward_params(None, "mug") == {"rewarded": True, "reward_id": "mug"}
    assert engagement.reward_params(None, None) == {}


@pytest.mark.parametrize("reason", ["surprise", "birthday"])
async def test_a_surprise_or_a_birthday_reward_is_one_message(
    reason: events.EngagementReason,
) -> None:
    notifications = FakeNotifications()
    cause = factories.engagement_rewarded(
        "c1", reason=reason, points=40, rule_id="r-1", name="Lucky", at=NOW
    )
    await apply(notifications, cause)
    delivery = notifications.only()
    assert (delivery.template, delivery.channel) == (reason, Channel.EMAIL)
    assert delivery.params == {"rule_id": "r-1", "name": "Lucky", "rewarded": True, "points": 40}
    assert delivery.notification_id == derived_event_id(cause.id, f"{reason}/email")


@pytest.mark.parametrize("reason", ["stamp_card", "challenge", "feedback"])
async def test_other_rewards_send_no_second_message(reason: events.EngagementReason) -> None:
    notifications = FakeNotifications()
    await apply(notifications, factories.engagement_rewarded("c1", reason=reason, at=NOW))
    assert notifications.deliveries == {}


# -- stamp cards -----------------------------------------------------------------------------


async def test_a_full_card_is_one_message_per_channel_even_delivered_twice() -> None:
    notifications = FakeNotifications()
    notifications.contacts["c1"] = texting()
    card = factories.stamp_card_completed(
        "c1", card_id="card-1", name="Coffee card", stamps_required=9, completed_count=2, at=NOW
    )
    await apply(notifications, card)
    await apply(notifications, card)  # redelivered: the same event, the same messages
    assert templates_of(notifications) == [
        (engagement.STAMP_CARD_COMPLETED, Channel.EMAIL),
        (engagement.STAMP_CARD_COMPLETED, Channel.SMS),
    ]
    email = notifications.deliveries[derived_event_id(card.id, "stamp_card_completed/email")]
    assert email.params == {
        "card_id": "card-1",
        "name": "Coffee card",
        "stamps_required": 9,
        "completed_count": 2,
        "rewarded": True,
    }
    assert email.status is DeliveryStatus.SCHEDULED and email.next_attempt_at == NOW


async def test_a_full_card_and_its_reward_in_one_batch_are_one_message() -> None:
    notifications = FakeNotifications()
    grant = "g-1"
    await apply(
        notifications,
        factories.engagement_rewarded("c1", grant_id=grant, reason="stamp_card", at=NOW),
        factories.stamp_card_completed("c1", grant_id=grant, at=NOW),
    )
    assert templates_of(notifications) == [(engagement.STAMP_CARD_COMPLETED, Channel.EMAIL)]


# -- challenges and badges -------------------------------------------------------------------


async def test_a_challenge_with_a_reward_and_a_badge_is_told_once_naming_both() -> None:
    notifications = FakeNotifications()
    await apply(
        notifications,
        factories.challenge_completed(
            "c1", challenge_id="ch-1", name="Five visits", badge="Regular", grant_id="g-1", at=NOW
        ),
        factories.badge_earned("c1", challenge_id="ch-1", badge="Regular", at=NOW),
    )
    delivery = notifications.only()
    assert delivery.template == engagement.CHALLENGE_COMPLETED
    assert delivery.notification_id == achievement_id("c1", "ch-1", Channel.EMAIL)
    assert delivery.params == {
        "challenge_id": "ch-1",
        "name": "Five visits",
        "badge": "Regular",
        "rewarded": True,
    }


async def test_in_one_batch_the_challenge_message_replaces_its_badge_told_first() -> None:
    notifications = FakeNotifications()
    notifications.contacts["c1"] = texting()
    challenge = factories.challenge_completed("c1", challenge_id="ch-1", badge="Regular", at=NOW)
    await apply(
        notifications,
        factories.badge_earned("c1", challenge_id="ch-1", badge="Regular", at=NOW),
        challenge,
    )
    assert templates_of(notifications) == [
        (engagement.CHALLENGE_COMPLETED, Channel.EMAIL),
        (engagement.CHALLENGE_COMPLETED, Channel.SMS),
    ]
    assert {d.cause_event_id for d in notifications.deliveries.values()} == {challenge.id}


async def test_a_badge_after_its_challenge_in_a_later_batch_sends_nothing_more() -> None:
    notifications = FakeNotifications()
    await apply(notifications, factories.challenge_completed("c1", challenge_id="ch-1", at=NOW))
    await apply(notifications, factories.badge_earned("c1", challenge_id="ch-1", at=NOW))
    assert templates_of(notifications) == [(engagement.CHALLENGE_COMPLETED, Channel.EMAIL)]


async def test_a_badge_alone_is_told_and_another_challenges_badge_too() -> None:
    notifications = FakeNotifications()
    await apply(
        notifications,
        factories.challenge_completed("c1", challenge_id="ch-1", at=NOW),
        factories.badge_earned("c1", challenge_id="ch-2", badge="Night owl", at=NOW),
    )
    assert templates_of(notifications) == [
        (engagement.BADGE_EARNED, Channel.EMAIL),
        (engagement.CHALLENGE_COMPLETED, Channel.EMAIL),
    ]
    badge = notifications.deliveries[achievement_id("c1", "ch-2", Channel.EMAIL)]
    assert badge.params == {"challenge_id": "ch-2", "badge": "Night owl"}


async def test_two_members_completing_one_challenge_are_each_told() -> None:
    notifications = FakeNotifications()
    await apply(
        notifications,
        factories.challenge_completed("c1", challenge_id="ch-1", at=NOW),
        factories.challenge_completed("c2", challenge_id="ch-1", at=NOW),
    )
    assert {d.customer_id for d in notifications.deliveries.values()} == {"c1", "c2"}


async def test_an_erased_member_is_told_nothing_of_a_challenge() -> None:
    notifications = FakeNotifications()
    await apply(
        notifications,
        factories.badge_earned("c1", challenge_id="ch-1", at=NOW),
        factories.erasure("c1", at=NOW),
        factories.challenge_completed("c1", challenge_id="ch-1", at=NOW + timedelta(seconds=1)),
    )
    delivery = notifications.only()
    assert delivery.status is DeliveryStatus.SUPPRESSED


# -- the invariant: one message per achievement, whatever the order and the batches ----------

KINDS = st.sampled_from(
    ["card", "challenge", "challenge+badge", "badge", "surprise", "birthday", "stamp_reward"]
)


def events_of(index: int, kind: str) -> list[CloudEvent]:
    """What engagement publishes for one achievement of member c1 (challenges numbered)."""
    challenge = f"ch-{index}"
    if kind == "card":
        return [factories.stamp_card_completed("c1", completed_count=index + 1, at=NOW)]
    if kind == "challenge":
        return [factories.challenge_completed("c1", challenge_id=challenge, at=NOW)]
    if kind == "challenge+badge":
        return [
            factories.challenge_completed("c1", challenge_id=challenge, badge="B", at=NOW),
            factories.badge_earned("c1", challenge_id=challenge, badge="B", at=NOW),
        ]
    if kind == "badge":
        return [factories.badge_earned("c1", challenge_id=challenge, at=NOW)]
    return [factories.engagement_rewarded("c1", reason=REASONS[kind], at=NOW)]


REASONS: dict[str, events.EngagementReason] = {
    "surprise": "surprise",
    "birthday": "birthday",
    "stamp_reward": "stamp_card",
}


@settings(max_examples=60, deadline=None)
@given(
    kinds=st.lists(KINDS, min_size=1, max_size=8),
    data=st.data(),
)
async def test_each_achievement_is_one_message_per_channel(
    kinds: list[str], data: st.DataObject
) -> None:
    published = [event for index, kind in enumerate(kinds) for event in events_of(index, kind)]
    # A redelivery of any of them, anywhere later, and any split into batches.
    published += data.draw(st.lists(st.sampled_from(published), max_size=3))
    cuts = sorted(data.draw(st.sets(st.integers(0, len(published)), max_size=3)))
    notifications = FakeNotifications()
    notifications.contacts["c1"] = texting()
    for start, end in zip([0, *cuts], [*cuts, len(published)], strict=True):
        await apply(notifications, *published[start:end])
    expected = sum(kind != "stamp_reward" for kind in kinds)
    for channel in (Channel.EMAIL, Channel.SMS):
        sent = [d for d in notifications.deliveries.values() if d.channel is channel]
        assert len(sent) == expected
    challenges = {f"ch-{i}" for i, k in enumerate(kinds) if k.startswith("challenge")}
    for delivery in notifications.deliveries.values():
        if delivery.params.get("challenge_id") in challenges:
            assert delivery.template == engagement.CHALLENGE_COMPLETED


@pytest.mark.parametrize("locale", LOCALES)
async def test_a_full_card_names_the_points_its_event_carries(locale: str) -> None:
    notifications = FakeNotifications()
    notifications.contacts["c1"] = texting()
    card = factories.stamp_card_completed(
        "c1", card_id="card-1", name="Coffee card", stamps_required=9, completed_count=1, at=NOW
    )
    card = card.model_copy(update={"data": {**card.data, "points": 40}})
    await apply(notifications, card)
    email = notifications.deliveries[derived_event_id(card.id, "stamp_card_completed/email")]
    assert email.params["points"] == 40
    body = render(engagement.STAMP_CARD_COMPLETED, locale, email.params).body
    assert FORTY_POINTS[locale] in body.replace("\u00a0", " ")
