"""The win-back that states an offer (issue 21): points' `offer_granted` becomes a
`win_back_offer` message on every channel, stating the multiplier and/or the bonus and the
offer's last local day in the member's language; and one lapse yields one win-back: the
offer's message marks the lapse, so the `win-back` job sends no plain one for it."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.notifications.domain.model import (
    WIN_BACK,
    WIN_BACK_OFFER,
    Channel,
    Contact,
    Delivery,
    DeliveryStatus,
    PurchaseActivity,
    covered_by_offer,
    is_lapsed,
    stale_reason,
)
from services.notifications.domain.templates import render, render_sms
from services.notifications.domain.win_back_offers import SUPERSEDED, last_day, offer_params
from services.notifications.handlers import HANDLED_TYPES, Context, apply_batch
from services.notifications.jobs import WinBack
from shared.clock import FixedClock
from shared.messaging import events
from shared.messaging.events import CloudEvent, derived_event_id, new_event
from shared.messaging.outbox import CollectingSink
from tests.support import factories
from tests.support.fakes.engine import FakeJobEngine
from tests.support.fakes.notifications import NOW, FakeNotifications, enrolled, erased_event

AFTER = timedelta(days=90)
LAST_PURCHASE = NOW - timedelta(days=120)
ENDS_AT = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)  # exclusive: the last UTC day is the 6th


def offer(
    customer_id: str = "c1",
    *,
    multiplier: str | None = "2",
    bonus: int | None = None,
    starts_at: datetime = NOW,
    ends_at: datetime = ENDS_AT,
    event_id: str | None = None,
) -> CloudEvent:
    return new_event(
        events.PointsOfferGranted(
            offer_id=f"offer-{customer_id}",
            customer_id=customer_id,
            reason="win_back",
            name="Welcome back",
            multiplier=None if multiplier is None else Decimal(multiplier),
            bonus=bonus,
            starts_at=starts_at,
            ends_at=ends_at,
        ),
        source="points",
        subject=customer_id,
        time=starts_at,
        event_id=event_id,
    )


def purchase(customer_id: str, occurred_at: datetime) -> CloudEvent:
    return factories.purchase(
        customer_id,
        "12.50",
        at=occurred_at,
        purchase_id=f"p-{customer_id}-{occurred_at.timestamp():.0f}",
        partner_id="partner-1",
    )


async def apply(batch: Sequence[CloudEvent], notifications: FakeNotifications) -> None:
    await apply_batch(batch, Context(notifications=notifications, sink=CollectingSink(), now=NOW))


def contact(customer_id: str, *, time_zone: str = "UTC", phone: str | None = None) -> Contact:
    return Contact(
        customer_id=customer_id,
        email=f"{customer_id}@example.com",
        phone=phone,
        locale="en",
        time_zone=time_zone,
        consent_email=True,
        consent_sms=phone is not None,
        updated_at=NOW,
    )


# -- the words -------------------------------------------------------------------------------

GIVES: dict[str, dict[str, Any]] = {
    "multiplier": {"multiplier": "2"},
    "other multiplier": {"multiplier": "1.5"},
    "bonus": {"bonus": 500},
    "both": {"multiplier": "2", "bonus": 500},
}
SUBJECTS = {
    ("en", "multiplier"): "A gift for you: double points until December 6, 2026",
    ("en", "other multiplier"): "A gift for you: 1.5\u00d7 points until December 6, 2026",
    ("en", "bonus"): "A gift for you: 500 bonus points until December 6, 2026",
    ("en", "both"): "A gift for you: double points and 500 bonus points until December 6, 2026",
    ("it", "multiplier"): "Un regalo per te: punti doppi fino al 6 dicembre 2026",
    ("it", "other multiplier"): "Un regalo per te: punti \u00d71,5 fino al 6 dicembre 2026",
    ("it", "bonus"): "Un regalo per te: 500 punti bonus fino al 6 dicembre 2026",
    ("it", "both"): "Un regalo per te: punti doppi e 500 punti bonus fino al 6 dicembre 2026",
    ("fi", "multiplier"): "Lahja sinulle: tuplapisteet 6. joulukuuta 2026 asti",
    ("fi", "other multiplier"): "Lahja sinulle: 1,5-kertaiset pisteet 6. joulukuuta 2026 asti",
    ("fi", "bonus"): "Lahja sinulle: 500 bonuspistettä 6. joulukuuta 2026 asti",
    ("fi", "both"): "Lahja sinulle: tuplapisteet ja 500 bonuspistettä 6. joulukuuta 2026 asti",
    ("pl", "multiplier"): "Prezent dla Ciebie: podwójne punkty do 6 grudnia 2026",
    ("pl", "other multiplier"): "Prezent dla Ciebie: punkty \u00d71,5 do 6 grudnia 2026",
    ("pl", "bonus"): "Prezent dla Ciebie: 500 punktów bonusowych do 6 grudnia 2026",
    (
        "pl",
        "both",
    ): "Prezent dla Ciebie: podwójne punkty i 500 punktów bonusowych do 6 grudnia 2026",
}


@pytest.mark.parametrize(("language", "gives"), sorted(SUBJECTS))
def test_the_message_states_the_offer_and_its_last_day_in_every_language(
    language: str, gives: str
) -> None:
    params = {"ends_on": "2026-12-06", **GIVES[gives]}
    message = render(WIN_BACK_OFFER, f"{language}-XX", params, unsubscribe_url="https://u.test")
    subject = SUBJECTS[(language, gives)]
    offered = subject.split(": ", 1)[1]
    what = offered.rsplit(" until ", 1)[0] if language == "en" else None
    assert message.locale == language
    assert message.subject == subject
    if what is not None:
        assert f"you get {what} on every purchase until December 6, 2026." in message.body
    assert "2026" in message.html and message.body.count("\n\n") >= 3
    assert render_sms(WIN_BACK_OFFER, language, params).body == f"Fedelta: {subject}"


def test_polish_and_english_bonus_plurals() -> None:
    def subject(language: str, bonus: int) -> str:
        return render(WIN_BACK_OFFER, language, {"bonus": bonus, "ends_on": "2026-12-06"}).subject

    assert subject("en", 1).startswith("A gift for you: 1 bonus point until")
    assert "2 punkty bonusowe" in subject("pl", 2)
    assert "1 punkt bonusowy" in subject("pl", 1)
    assert "1 bonuspiste " in subject("fi", 1)


def test_the_params_state_only_what_the_offer_gives_and_its_last_local_day() -> None:
    params = offer_params(
        offer_id="o1",
        name="Welcome back",
        multiplier=Decimal("2.00"),
        bonus=None,
        starts_at=NOW,
        ends_at=ENDS_AT,
        zone=ZoneInfo("Europe/Helsinki"),
    )
    assert params == {
        "offer_id": "o1",
        "name": "Welcome back",
        "multiplier": "2",
        "starts_at": NOW.isoformat(),
        "ends_at": ENDS_AT.isoformat(),
        # Midnight UTC is 02:00 in Helsinki: the offer still runs on the 7th there.
        "ends_on": "2026-12-07",
    }
    assert last_day(ENDS_AT, ZoneInfo("UTC")) == "2026-12-06"  # ends at midnight: the day before
    assert last_day(ENDS_AT, ZoneInfo("America/New_York")) == "2026-12-06"
    with_bonus = offer_params(
        offer_id="o1",
        name="n",
        multiplier=Decimal("1.50"),
        bonus=300,
        starts_at=NOW,
        ends_at=ENDS_AT,
        zone=ZoneInfo("UTC"),
    )
    assert (with_bonus["multiplier"], with_bonus["bonus"]) == ("1.5", 300)


def test_the_message_is_stale_once_the_offer_ended() -> None:
    delivery = Delivery(
        notification_id="n1",
        customer_id="c1",
        channel=Channel.EMAIL,
        template=WIN_BACK_OFFER,
        cause_event_id="e1",
        created_at=NOW,
        next_attempt_at=NOW,
        params={"ends_at": ENDS_AT.isoformat(), "ends_on": "2026-12-06", "multiplier": "2"},
    )
    assert stale_reason(delivery, ENDS_AT - timedelta(seconds=1)) is None
    assert stale_reason(delivery, ENDS_AT) == "the offer it states has ended"


# -- the handler -----------------------------------------------------------------------------


def test_points_offers_are_handled() -> None:
    assert events.POINTS_OFFER_GRANTED in HANDLED_TYPES


async def test_an_offer_is_one_message_per_channel_whose_id_derives_from_the_event() -> None:
    notifications = FakeNotifications()
    notifications.contacts["c1"] = contact("c1", time_zone="Europe/Helsinki", phone="+358401")
    granted = offer("c1", bonus=200)
    await apply([granted], notifications)
    await apply([granted], notifications)  # redelivered: the same messages, none added
    by_channel = {d.channel: d for d in notifications.deliveries.values()}
    assert set(by_channel) == {Channel.EMAIL, Channel.SMS}
    email = by_channel[Channel.EMAIL]
    assert email.template == WIN_BACK_OFFER
    assert email.notification_id == derived_event_id(granted.id, "win_back_offer/email")
    assert email.cause_event_id == granted.id
    assert email.status is DeliveryStatus.SCHEDULED and email.next_attempt_at == NOW
    assert email.params["multiplier"] == "2" and email.params["bonus"] == 200
    assert email.params["ends_on"] == "2026-12-07"  # the member's own last day, in Helsinki


async def test_a_profile_in_the_same_batch_gives_the_time_zone() -> None:
    notifications = FakeNotifications()
    await apply([enrolled("c1"), offer("c1")], notifications)
    offers = [d for d in notifications.deliveries.values() if d.template == WIN_BACK_OFFER]
    assert [d.params["ends_on"] for d in offers] == ["2026-12-06"]  # the profile's UTC


async def test_an_offer_after_the_erasure_in_a_batch_marks_no_lapse() -> None:
    notifications = FakeNotifications()
    await apply([purchase("c1", LAST_PURCHASE)], notifications)
    await apply([offer("c1"), erased_event("c1")], notifications)
    assert notifications.won_back == {} and notifications.last_purchases == {}
    offered = [d for d in notifications.deliveries.values() if d.template == WIN_BACK_OFFER]
    assert [d.status for d in offered] == [DeliveryStatus.SUPPRESSED]


# -- one lapse, one win-back -----------------------------------------------------------------


def test_an_offer_covers_the_lapse_of_the_last_purchase_before_it_starts() -> None:
    lapse = PurchaseActivity("c1", LAST_PURCHASE)
    assert covered_by_offer(lapse, NOW) == LAST_PURCHASE
    assert covered_by_offer(replace(lapse, win_back_for=LAST_PURCHASE), NOW) is None
    earlier = replace(lapse, win_back_for=LAST_PURCHASE - timedelta(days=200))
    assert covered_by_offer(earlier, NOW) == LAST_PURCHASE
    came_back = PurchaseActivity("c1", NOW + timedelta(hours=1))  # bought after the start
    assert covered_by_offer(came_back, NOW) is None


class JobsOnFake:
    """ports.JobsRepository over the consumer's fake: the win-back job reads and marks the
    same purchase activity the offer marked."""

    def __init__(self, fake: FakeNotifications) -> None:
        self.fake = fake

    async def release(self, as_of: datetime, *, held: bool) -> int:
        return 0

    async def lapsed(
        self, as_of: datetime, after: timedelta, *, after_key: tuple[datetime, str], limit: int
    ) -> list[PurchaseActivity]:
        taken = [
            self.fake.activity(c)
            for c in sorted(self.fake.last_purchases)
            if c in self.fake.contacts and is_lapsed(self.fake.activity(c), as_of, after)
        ]
        return [a for a in taken if (a.last_purchase_at, a.customer_id) > after_key][:limit]

    async def mark_won_back(self, activities: Collection[PurchaseActivity]) -> None:
        for a in activities:
            self.fake.won_back[a.customer_id] = a.last_purchase_at

    async def contacts_of(self, customer_ids: Collection[str]) -> dict[str, Contact]:
        return await self.fake.contacts_of(customer_ids)

    async def partners_with_webhooks(self, partner_ids: Collection[str]) -> set[str]:
        return await self.fake.partners_with_webhooks(partner_ids)

    async def schedule(self, deliveries: Collection[Delivery]) -> set[str]:
        return await self.fake.schedule(deliveries)


async def win_back_job(fake: FakeNotifications, as_of: datetime) -> dict[str, object]:
    job = WinBack(FixedClock(NOW), AFTER, repository=lambda _: JobsOnFake(fake))
    return await job.run(FakeJobEngine().as_engine(), as_of)


def templates_of(fake: FakeNotifications, customer_id: str) -> list[tuple[str, DeliveryStatus]]:
    return sorted(
        (d.template, d.status)
        for d in fake.deliveries.values()
        if d.customer_id == customer_id and d.channel is Channel.EMAIL
    )


async def test_the_job_skips_a_lapse_the_offer_already_told_of() -> None:
    fake = FakeNotifications()
    for c in ("c1", "c2"):
        fake.contacts[c] = contact(c)
    await apply([purchase("c1", LAST_PURCHASE), purchase("c2", LAST_PURCHASE)], fake)
    await apply([offer("c1")], fake)
    assert fake.won_back == {"c1": LAST_PURCHASE}

    summary = await win_back_job(fake, NOW)
    assert (summary["lapsed"], summary["scheduled"]) == (1, 1)  # c2 only: no offer
    assert templates_of(fake, "c1") == [(WIN_BACK_OFFER, DeliveryStatus.SCHEDULED)]
    assert templates_of(fake, "c2") == [(WIN_BACK, DeliveryStatus.SCHEDULED)]

    # A new purchase and a new lapse: the job's plain win-back again.
    bought_again = NOW + timedelta(days=1)
    await apply([purchase("c1", bought_again)], fake)
    later = await win_back_job(fake, bought_again + AFTER)
    assert (later["lapsed"], later["scheduled"]) == (1, 1)
    assert [t for t, _ in templates_of(fake, "c1")] == [WIN_BACK, WIN_BACK_OFFER]


async def test_a_purchase_after_the_offer_started_is_not_the_offers_lapse() -> None:
    fake = FakeNotifications()
    fake.contacts["c1"] = contact("c1")
    came_back = NOW + timedelta(hours=2)
    # Topics interleave: the comeback purchase may reach notifications with or before the
    # offer; the lapse after it is a new one.
    await apply([offer("c1"), purchase("c1", came_back), purchase("c1", LAST_PURCHASE)], fake)
    assert fake.won_back == {}
    summary = await win_back_job(fake, came_back + AFTER)
    assert summary["scheduled"] == 1


async def test_a_plain_win_back_still_waiting_is_superseded_one_already_sent_is_not() -> None:
    fake = FakeNotifications()
    for c in ("waiting", "sent"):
        fake.contacts[c] = contact(c)
        await apply([purchase(c, LAST_PURCHASE)], fake)
    assert (await win_back_job(fake, NOW))["scheduled"] == 2
    plain_sent = next(d for d in fake.deliveries.values() if d.customer_id == "sent")
    fake.deliveries[plain_sent.notification_id] = replace(
        plain_sent, status=DeliveryStatus.SENT, attempts=1, sent_at=NOW
    )

    await apply([offer("waiting"), offer("sent")], fake)

    assert templates_of(fake, "waiting") == [
        (WIN_BACK, DeliveryStatus.SUPPRESSED),
        (WIN_BACK_OFFER, DeliveryStatus.SCHEDULED),
    ]
    superseded = next(
        d for d in fake.deliveries.values() if d.customer_id == "waiting" and d.template == WIN_BACK
    )
    assert superseded.last_error == SUPERSEDED
    # The plain one went before the offer arrived: the member still learns of the gift.
    assert templates_of(fake, "sent") == [
        (WIN_BACK, DeliveryStatus.SENT),
        (WIN_BACK_OFFER, DeliveryStatus.SCHEDULED),
    ]
    assert fake.won_back == {"waiting": LAST_PURCHASE, "sent": LAST_PURCHASE}


async def test_a_replayed_offer_leaves_the_plain_win_back_of_a_later_lapse_alone() -> None:
    fake = FakeNotifications()
    fake.contacts["c1"] = contact("c1")
    granted = offer("c1")
    await apply([purchase("c1", LAST_PURCHASE), granted], fake)
    bought_again = NOW + timedelta(days=1)
    await apply([purchase("c1", bought_again)], fake)
    assert (await win_back_job(fake, bought_again + AFTER))["scheduled"] == 1

    await apply([granted], fake)  # replayed once its inbox claim was purged

    assert templates_of(fake, "c1") == [
        (WIN_BACK, DeliveryStatus.SCHEDULED),
        (WIN_BACK_OFFER, DeliveryStatus.SCHEDULED),
    ]
    assert fake.won_back == {"c1": bought_again}
