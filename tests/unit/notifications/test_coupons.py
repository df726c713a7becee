"""A reward's coupon in redemption_confirmed: scheduled from coupon.issued (points.redeemed of
a reward says nothing of its own), its code read from points at send time (one call per
coupon, concurrently and bounded), sent as text and a QR image by email and as text by SMS,
never to a partner's webhook, never stored or logged; points away makes it wait, an unknown
coupon fails it."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
import segno
from hypothesis import given
from hypothesis import strategies as st

from services.notifications.adapters.http_channels import OutgoingSms, OutgoingWebhook
from services.notifications.adapters.smtp import wire_bytes
from services.notifications.dispatcher import DeliveryDispatcher
from services.notifications.domain.coupons import (
    REDEMPTION_CONFIRMED,
    CouponUnavailable,
    coupon_of,
    qr_content_id,
    qr_png,
    wait_for_coupon,
)
from services.notifications.domain.model import (
    Channel,
    Delivery,
    DeliveryPolicy,
    DeliveryStatus,
    Lane,
    PartnerWebhook,
    lane_of,
    schedule,
    stale_reason,
)
from services.notifications.handlers import Context, apply_batch
from shared.clock import FixedClock
from shared.messaging import events
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import CollectingSink
from tests.support import factories
from tests.support.fakes.notifications import (
    NOW,
    FakeCoupons,
    FakeNotifications,
    FakeSender,
    FakeUnits,
)
from tests.support.notifications import coupon_issued, points_redeemed, qr_modules

POLICY = DeliveryPolicy(
    max_attempts=3, retry_backoff=timedelta(seconds=10), retry_backoff_max=timedelta(minutes=5)
)
CODE = "FDL7K2QM9XWA3HTR"
PHONE = "+393331234567"
EXPIRES = datetime(2026, 12, 22, 23, 30, tzinfo=UTC)  # 00:30 on December 23 in Rome


class SmsOut:
    def __init__(self) -> None:
        self.sent: list[OutgoingSms] = []

    async def send(self, sms: OutgoingSms) -> None:
        self.sent.append(sms)


class WebhooksOut:
    def __init__(self) -> None:
        self.sent: list[OutgoingWebhook] = []

    async def send(self, call: OutgoingWebhook) -> None:
        self.sent.append(call)


class Harness:
    def __init__(
        self, coupons: FakeCoupons | None = None, *, with_reader: bool = True, concurrency: int = 8
    ) -> None:
        self.clock = FixedClock(NOW)
        self.notifications = FakeNotifications()
        self.sink = CollectingSink()
        self.email = FakeSender()
        self.sms = SmsOut()
        self.webhooks = WebhooksOut()
        self.coupons = coupons or FakeCoupons()
        self.dispatcher = DeliveryDispatcher(
            transactions=FakeUnits(self.notifications, self.sink),
            sender=self.email,
            clock=self.clock,
            policy=POLICY,
            batch_size=50,
            concurrency=concurrency,
            sms=self.sms,
            webhooks=self.webhooks,
            coupons=self.coupons if with_reader else None,
        )

    async def consume(self, *batch: CloudEvent) -> None:
        ctx = Context(notifications=self.notifications, sink=CollectingSink(), now=self.clock.now())
        await apply_batch(list(batch), ctx)

    async def member(
        self, customer_id: str = "c1", *, sms: bool = False, partner_id: str = "demo"
    ) -> None:
        await self.consume(
            factories.enrolment(
                customer_id,
                at=NOW,
                partner_id=partner_id,
                locale="en",
                time_zone="Europe/Rome",
                email=f"{customer_id}@example.com",
                phone=PHONE if sms else None,
                consent=events.Consent(email=True, sms=sms),
            )
        )
        # The welcome is not what these tests are about: out of the way.
        await self.dispatcher.dispatch_due()
        self.email.sent.clear()
        self.sms.sent.clear()
        self.webhooks.sent.clear()
        self.sink.events.clear()

    def coupon_messages(self) -> list[Delivery]:
        return [
            d for d in self.notifications.deliveries.values() if d.template == REDEMPTION_CONFIRMED
        ]


def issued(customer_id: str = "c1", coupon_id: str = "cp-1", **fields: object) -> CloudEvent:
    return coupon_issued(
        customer_id,
        coupon_id=coupon_id,
        expires_at=EXPIRES,
        at=NOW,
        **fields,  # type: ignore[arg-type]
    )


# -- What is scheduled ------------------------------------------------------------------------


async def test_a_rewards_redemption_says_nothing_of_its_own_and_its_coupon_is_confirmed() -> None:
    harness = Harness()
    await harness.member()

    await harness.consume(
        points_redeemed("c1", reward_id="rw-coffee", at=NOW), issued(points=750, reward="Mug")
    )

    (message,) = harness.coupon_messages()
    assert message.channel is Channel.EMAIL
    assert message.params == {
        "points": 750,
        "reward": "Mug",
        "reward_id": "rw-coffee",
        "coupon_id": "cp-1",
        "expires_at": EXPIRES.isoformat(),
        "expires_on": "2026-12-23",  # the member's day, in Rome
    }
    assert lane_of(message.template) is Lane.TRANSACTIONAL


async def test_a_free_form_redemption_is_confirmed_as_before_and_needs_no_coupon() -> None:
    harness = Harness()
    await harness.member()

    await harness.consume(points_redeemed("c1", points=300, reward="Staff gift", at=NOW))
    (message,) = harness.coupon_messages()
    assert message.params == {"points": 300, "reward": "Staff gift"}
    assert coupon_of(message) is None

    await harness.dispatcher.dispatch_due()
    (email,) = harness.email.sent
    assert "Staff gift" in email.body and "coupon" not in email.body.lower()
    assert email.images == ()
    assert harness.coupons.calls == []


async def test_a_coupon_is_confirmed_on_every_channel_the_member_is_reachable_on() -> None:
    harness = Harness()
    await harness.member(sms=True)
    harness.notifications.webhooks["demo"] = PartnerWebhook(
        partner_id="demo", url="https://partner.example.com/hook", secret="s" * 20, created_at=NOW
    )

    await harness.consume(issued())

    assert {m.channel for m in harness.coupon_messages()} == set(Channel)


async def test_a_redelivered_coupon_event_is_one_message() -> None:
    harness = Harness()
    await harness.member()
    event = issued()

    await harness.consume(event)
    await harness.consume(event)
    await harness.consume(event, event)

    assert len(harness.coupon_messages()) == 1


async def test_a_batch_of_coupons_costs_the_same_statements_whatever_its_size() -> None:
    costs = []
    for size in (1, 20):
        harness = Harness()
        for n in range(size):
            await harness.member(f"c{n}")
        before = harness.notifications.statements
        await harness.consume(*(issued(f"c{n}", f"cp-{n}") for n in range(size)))
        costs.append(harness.notifications.statements - before)
        assert len(harness.coupon_messages()) == size
    assert costs[0] == costs[1]


# -- What is sent ------------------------------------------------------------------------------


async def test_the_email_carries_the_code_as_text_and_as_a_qr_image_shown_inline() -> None:
    harness = Harness()
    await harness.member()
    harness.coupons.add("cp-1", "c1", CODE)
    await harness.consume(issued())

    await harness.dispatcher.dispatch_due()

    (email,) = harness.email.sent
    (message,) = harness.coupon_messages()
    assert f"Your coupon code is {CODE}" in email.body
    assert "December 23, 2026" in email.body
    assert CODE in email.html  # type: ignore[operator]
    (image,) = email.images
    assert image.content_id == qr_content_id(message.notification_id)
    assert f'<img src="cid:{image.content_id}" alt="{CODE}">' in email.html  # type: ignore[operator]
    reference = [[bool(v) for v in row] for row in segno.make(CODE, error="m", micro=False).matrix]
    assert qr_modules(image.data) == reference
    stored = harness.notifications.deliveries[message.notification_id]
    assert stored.status is DeliveryStatus.SENT
    assert "code" not in stored.params  # read at send time, never stored
    assert harness.coupons.calls == ["cp-1"]


async def test_the_emails_bytes_are_related_parts_whose_image_the_html_names() -> None:
    harness = Harness()
    await harness.member()
    harness.coupons.add("cp-1", "c1", CODE)
    await harness.consume(issued())
    await harness.dispatcher.dispatch_due()
    (email,) = harness.email.sent

    raw = wire_bytes(email, "Fedelta <no-reply@fedelta.localhost>")
    assert all(line.isascii() and len(line) <= 998 for line in raw.split(b"\r\n"))
    parsed = BytesParser(policy=policy.strict).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    assert parsed.get_content_type() == "multipart/alternative"
    plain, related = parsed.iter_parts()
    assert plain.get_content_type() == "text/plain" and CODE in plain.get_content()
    assert related.get_content_type() == "multipart/related"
    assert related.get_param("type") == "text/html"
    html, image = related.iter_parts()
    assert image.get_content_type() == "image/png"
    assert image["Content-ID"] == f"<{email.images[0].content_id}>"
    assert f"cid:{email.images[0].content_id}" in html.get_content()
    assert image.get_content() == email.images[0].data
    for part in parsed.walk():
        assert all(part[name].defects == () for name in part), part.get_content_type()


async def test_the_sms_carries_the_code_and_the_webhook_only_the_coupons_id() -> None:
    harness = Harness()
    await harness.member(sms=True)
    harness.notifications.webhooks["demo"] = PartnerWebhook(
        partner_id="demo", url="https://partner.example.com/hook", secret="s" * 20, created_at=NOW
    )
    harness.coupons.add("cp-1", "c1", CODE)
    await harness.consume(issued())

    await harness.dispatcher.dispatch_due()

    (sms,) = harness.sms.sent
    assert sms.text == (
        f"Fedelta: Your reward is confirmed. Coupon code {CODE}, valid until December 23, 2026"
    )
    (call,) = harness.webhooks.sent
    assert call.payload["data"]["coupon_id"] == "cp-1"
    assert CODE not in repr(call.payload)
    assert harness.coupons.calls == ["cp-1"]  # one call for the email and the SMS
    assert {m.status for m in harness.coupon_messages()} == {DeliveryStatus.SENT}


async def test_a_batchs_coupons_are_read_concurrently_one_call_each_and_bounded() -> None:
    harness = Harness(FakeCoupons(delay=0.01), concurrency=3)
    for n in range(10):
        await harness.member(f"c{n}")
        harness.coupons.add(f"cp-{n}", f"c{n}", f"CODE{n:04d}")
    await harness.consume(*(issued(f"c{n}", f"cp-{n}") for n in range(10)))

    assert await harness.dispatcher.dispatch_due() == 10

    assert sorted(harness.coupons.calls) == sorted(f"cp-{n}" for n in range(10))
    assert harness.coupons.most_in_flight == 3
    assert sorted(e.to for e in harness.email.sent) == sorted(
        f"c{n}@example.com" for n in range(10)
    )
    for email in harness.email.sent:
        number = email.to.split("@")[0].removeprefix("c")
        assert f"CODE{int(number):04d}" in email.body  # each member their own code


# -- When points cannot give the code ---------------------------------------------------------


async def test_while_points_is_away_the_message_waits_and_goes_out_once_it_is_back() -> None:
    harness = Harness()
    await harness.member()
    harness.coupons.add("cp-1", "c1", CODE)
    harness.coupons.failures["cp-1"] = CouponUnavailable("points unavailable (HTTP 503)")
    await harness.consume(issued())

    delays = []
    for attempt in range(1, POLICY.max_attempts + 3):  # past the delivery attempts' limit
        await harness.dispatcher.dispatch_due()
        (waiting,) = harness.coupon_messages()
        assert (waiting.status, waiting.attempts, waiting.last_error) == (
            DeliveryStatus.SCHEDULED,
            attempt,
            "points unavailable (HTTP 503)",
        )
        delays.append(waiting.next_attempt_at - harness.clock.now())
        assert harness.email.sent == []  # never without its code
        harness.clock.set(waiting.next_attempt_at)
    assert delays == sorted(delays) and delays[0] < delays[-1]  # backing off
    assert harness.sink.events == []  # nothing announced: it has not failed

    del harness.coupons.failures["cp-1"]
    await harness.dispatcher.dispatch_due()
    (sent,) = harness.coupon_messages()
    assert sent.status is DeliveryStatus.SENT and sent.last_error is None
    (email,) = harness.email.sent
    assert CODE in email.body


async def test_an_unexpected_error_reading_points_is_points_away_by_its_class() -> None:
    harness = Harness()
    await harness.member()
    harness.coupons.failures["cp-1"] = RuntimeError(f"boom {CODE}")
    await harness.consume(issued())

    await harness.dispatcher.dispatch_due()

    (waiting,) = harness.coupon_messages()
    assert (waiting.status, waiting.last_error) == (
        DeliveryStatus.SCHEDULED,
        "points unavailable (RuntimeError)",
    )


async def test_without_points_configured_the_message_waits_saying_so() -> None:
    harness = Harness(with_reader=False)
    await harness.member()
    await harness.consume(issued())

    await harness.dispatcher.dispatch_due()

    (waiting,) = harness.coupon_messages()
    assert (waiting.status, waiting.attempts, waiting.last_error) == (
        DeliveryStatus.SCHEDULED,
        1,
        "points not configured (no points token)",
    )
    assert harness.email.sent == []


async def test_a_coupon_points_does_not_know_fails_the_message_for_good() -> None:
    harness = Harness()
    await harness.member()
    await harness.consume(issued())

    await harness.dispatcher.dispatch_due()

    (failed,) = harness.coupon_messages()
    assert (failed.status, failed.attempts, failed.last_error) == (
        DeliveryStatus.FAILED,
        1,
        "unknown coupon (points answered 404)",
    )
    ((_, _, outcome),) = harness.sink.events
    assert outcome.type == events.NOTIFICATION_FAILED
    assert outcome.data["error"] == "unknown coupon (points answered 404)"
    assert harness.email.sent == []


async def test_another_members_coupon_is_never_sent() -> None:
    harness = Harness()
    await harness.member()
    harness.coupons.add("cp-1", "someone-else", CODE)
    await harness.consume(issued())

    await harness.dispatcher.dispatch_due()

    (failed,) = harness.coupon_messages()
    assert (failed.status, failed.last_error) == (
        DeliveryStatus.FAILED,
        "the coupon is another customer's",
    )
    assert harness.email.sent == []


async def test_a_message_whose_coupon_expired_meanwhile_is_dropped_unread() -> None:
    harness = Harness()
    await harness.member()
    harness.coupons.add("cp-1", "c1", CODE)
    await harness.consume(issued())
    harness.clock.set(EXPIRES + timedelta(seconds=1))

    await harness.dispatcher.dispatch_due()

    (dropped,) = harness.coupon_messages()
    assert (dropped.status, dropped.last_error) == (
        DeliveryStatus.SUPPRESSED,
        "stale: the coupon it carries has expired",
    )
    assert harness.coupons.calls == []


async def test_the_code_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    harness = Harness()
    await harness.member(sms=True)
    harness.coupons.add("cp-1", "c1", CODE)
    await harness.consume(issued())
    await harness.dispatcher.dispatch_due()
    harness.coupons.failures["cp-2"] = CouponUnavailable("points unavailable (HTTP 503)")
    await harness.consume(issued(coupon_id="cp-2"))
    await harness.dispatcher.dispatch_due()

    assert len(harness.email.sent) == 1
    assert caplog.records
    assert all(CODE not in record.getMessage() for record in caplog.records)
    assert CODE not in repr(harness.coupons.coupons["cp-1"])


# -- The rules ---------------------------------------------------------------------------------


def coupon_message(
    channel: Channel = Channel.EMAIL, params: dict[str, object] | None = None
) -> Delivery:
    return schedule(
        notification_id=f"n-{channel.value}",
        customer_id="c1",
        channel=channel,
        template=REDEMPTION_CONFIRMED,
        cause_event_id="cause",
        now=NOW,
        params={"coupon_id": "cp-1", "expires_at": EXPIRES.isoformat()}
        if params is None
        else params,
    )


def test_only_a_coupons_message_to_a_person_needs_its_code() -> None:
    assert coupon_of(coupon_message(Channel.EMAIL)) == "cp-1"
    assert coupon_of(coupon_message(Channel.SMS)) == "cp-1"
    assert coupon_of(coupon_message(Channel.WEBHOOK)) is None
    assert coupon_of(coupon_message(params={"points": 5, "reward": "Mug"})) is None


def test_a_coupons_message_is_stale_once_the_coupon_expired_and_a_free_form_one_never() -> None:
    assert stale_reason(coupon_message(), EXPIRES - timedelta(seconds=1)) is None
    assert stale_reason(coupon_message(), EXPIRES) == "the coupon it carries has expired"
    free_form = coupon_message(params={"points": 5, "reward": "Mug"})
    assert stale_reason(free_form, NOW + timedelta(days=3650)) is None


@given(
    attempts=st.integers(min_value=0, max_value=10_000),
    max_attempts=st.integers(min_value=1, max_value=20),
)
def test_points_being_away_never_fails_a_message_and_always_backs_off(
    attempts: int, max_attempts: int
) -> None:
    policy = DeliveryPolicy(max_attempts=max_attempts)
    message = replace(coupon_message(), attempts=attempts)
    waiting = wait_for_coupon(message, CouponUnavailable("points unavailable (x)"), NOW, policy)
    assert waiting.status is DeliveryStatus.SCHEDULED
    assert waiting.attempts == attempts + 1
    assert NOW < waiting.next_attempt_at <= NOW + policy.retry_backoff_max
    assert waiting.params == message.params


@given(
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64)
)
def test_the_qr_image_encodes_exactly_the_code(code: str) -> None:
    reference = [[bool(v) for v in row] for row in segno.make(code, error="m", micro=False).matrix]
    assert qr_modules(qr_png(code)) == reference
