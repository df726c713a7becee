"""A gift coupon (issue 20: engagement's catalogue reward, issued by points with no points spent
and `coupon.issued` naming the grant) is told as a gift, not as a redemption: in every locale,
its text says it is a present, never that points were spent, and it still carries the code and
the last day (email and SMS, whose subject, "your reward is confirmed", is the redemption's);
one voided before it went out is not sent; a redemption's coupon reads as before."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.notifications.dispatcher import DeliveryDispatcher
from services.notifications.domain import templates
from services.notifications.domain.coupons import REDEMPTION_CONFIRMED
from services.notifications.domain.model import DeliveryPolicy, DeliveryStatus, Lane, lane_of
from services.notifications.handlers import Context, apply_batch
from shared.clock import FixedClock
from shared.messaging import events
from shared.messaging.events import CloudEvent, new_event
from shared.messaging.outbox import CollectingSink
from tests.support import factories
from tests.support.fakes.notifications import (
    NOW,
    FakeCoupons,
    FakeNotifications,
    FakeSender,
    FakeUnits,
)

LOCALES = tuple(templates.TEMPLATES[REDEMPTION_CONFIRMED])
CODE = "FDL7K2QM9XWA3HTR"
GIFT = {
    "points": 0,
    "reward": "Free coffee",
    "reward_id": "rw-coffee",
    "coupon_id": "cp-1",
    "expires_at": "2027-03-30T22:30:00+00:00",
    "expires_on": "2027-03-31",
    "gift": True,
    "code": CODE,
}
DAYS = {
    "en": "March 31, 2027",
    "it": "31 marzo 2027",
    "fi": "31. maaliskuuta 2027",
    "pl": "31 marca 2027",
}
GIFT_WORDS = {"en": "gift", "it": "regalo", "fi": "lahja", "pl": "prezent"}
EXPIRES = datetime(2026, 12, 22, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize("locale", LOCALES)
def test_a_gift_coupon_reads_as_a_gift_with_its_code_and_last_day(locale: str) -> None:
    gift = templates.render(REDEMPTION_CONFIRMED, locale, GIFT, qr_src="cid:qr@fedelta")
    redeemed = templates.render(REDEMPTION_CONFIRMED, locale, GIFT | {"gift": False})
    assert gift.locale == locale
    assert GIFT_WORDS[locale] in gift.body.lower() and "Free coffee" in gift.body
    assert GIFT_WORDS[locale] in gift.html.lower()
    assert CODE in gift.body and DAYS[locale] in gift.body and CODE in gift.html
    assert CODE not in gift.subject
    # Nothing of a redemption: not its sentence with the points spent; the subject (the
    # reward confirmed) is the same.
    [_, said, _] = redeemed.body.split("\n\n")
    assert said not in gift.body and said not in gift.html
    assert gift.subject == redeemed.subject
    assert gift.body.count("\n\n") == 2  # greeting, the gift, the coupon


@pytest.mark.parametrize("locale", LOCALES)
def test_a_gift_coupons_sms_is_the_gift_with_its_code(locale: str) -> None:
    sms = templates.render_sms(REDEMPTION_CONFIRMED, locale, GIFT).body
    assert sms.startswith(templates.SMS_PREFIX)
    assert CODE in sms and DAYS[locale] in sms
    assert len(sms) <= 160


def dispatcher(
    notifications: FakeNotifications, email: FakeSender, coupons: FakeCoupons
) -> DeliveryDispatcher:
    return DeliveryDispatcher(
        transactions=FakeUnits(notifications, CollectingSink()),
        sender=email,
        clock=FixedClock(NOW),
        policy=DeliveryPolicy(
            max_attempts=3,
            retry_backoff=timedelta(seconds=10),
            retry_backoff_max=timedelta(minutes=5),
        ),
        batch_size=50,
        coupons=coupons,
    )


def gift_issued(grant_id: str | None = "g-1") -> CloudEvent:
    return new_event(
        events.CouponIssued(
            coupon_id="cp-1",
            customer_id="c1",
            redemption_id=grant_id or "r-1",
            reward_id="rw-coffee",
            reward="Free coffee",
            points=0 if grant_id else 300,
            expires_at=EXPIRES,
            grant_id=grant_id,
        ),
        source="points",
        subject="c1",
        time=NOW,
    )


async def test_coupon_issued_of_a_grant_schedules_the_gifts_message_and_sends_it() -> None:
    notifications, email, coupons = FakeNotifications(), FakeSender(), FakeCoupons()
    ctx = Context(notifications=notifications, sink=CollectingSink(), now=NOW)
    enrolment = factories.enrolment(
        "c1",
        at=NOW,
        locale="en",
        time_zone="Europe/Rome",
        email="c1@example.com",
        consent=events.Consent(email=True),
    )
    await apply_batch([enrolment], ctx)
    await apply_batch([gift_issued()], ctx)
    [message] = [d for d in notifications.deliveries.values() if d.template == REDEMPTION_CONFIRMED]
    assert message.params["gift"] is True and message.params["points"] == 0
    assert lane_of(message.template) is Lane.TRANSACTIONAL

    coupons.add("cp-1", "c1", CODE, EXPIRES)
    await dispatcher(notifications, email, coupons).dispatch_due()
    [sent] = [e for e in email.sent if CODE in e.body]
    assert "Free coffee is our gift to you" in sent.body and "redeemed" not in sent.body


async def test_a_gift_voided_before_its_message_went_out_is_not_sent() -> None:
    notifications, email, coupons = FakeNotifications(), FakeSender(), FakeCoupons()
    ctx = Context(notifications=notifications, sink=CollectingSink(), now=NOW)
    enrolment = factories.enrolment(
        "c1", at=NOW, email="c1@example.com", consent=events.Consent(email=True)
    )
    await apply_batch([enrolment, gift_issued()], ctx)
    coupons.coupons["cp-1"] = replace(coupons.add("cp-1", "c1", CODE, EXPIRES), status="voided")
    await dispatcher(notifications, email, coupons).dispatch_due()
    assert [e for e in email.sent if CODE in e.body] == []
    [message] = [d for d in notifications.deliveries.values() if d.template == REDEMPTION_CONFIRMED]
    assert (message.status, message.last_error) == (
        DeliveryStatus.FAILED,
        "the coupon was voided",
    )


async def test_a_redemptions_coupon_is_no_gift() -> None:
    notifications = FakeNotifications()
    ctx = Context(notifications=notifications, sink=CollectingSink(), now=NOW)
    await apply_batch([factories.enrolment("c1", at=NOW, email="c1@example.com")], ctx)
    await apply_batch([gift_issued(None)], ctx)
    [message] = [d for d in notifications.deliveries.values() if d.template == REDEMPTION_CONFIRMED]
    assert "gift" not in message.params and message.params["points"] == 300
