"""The dispatcher on fakes, driven by a fixed clock: sent, suppressed, retried, failed."""

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from services.notifications.adapters.smtp import EmailDeliveryError
from services.notifications.dispatcher import DeliveryDispatcher
from services.notifications.domain.model import (
    NO_CONSENT,
    NO_CONTACT,
    Channel,
    DeliveryPolicy,
    DeliveryStatus,
    schedule,
)
from services.notifications.handlers import Context, apply_batch, welcome_id
from shared.clock import FixedClock
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import CollectingSink
from tests.support.fakes.notifications import (
    NOW,
    FakeNotifications,
    FakeSender,
    FakeUnits,
    enrolled,
    tier_changed,
)

POLICY = DeliveryPolicy(
    max_attempts=3,
    retry_backoff=timedelta(seconds=10),
    retry_backoff_max=timedelta(minutes=10),
    contact_wait=timedelta(minutes=10),
    contact_recheck=timedelta(seconds=15),
)


class Harness:
    def __init__(self) -> None:
        self.clock = FixedClock(NOW)
        self.notifications = FakeNotifications()
        self.sink = CollectingSink()
        self.sender = FakeSender()
        self.units = FakeUnits(self.notifications, self.sink)
        self.wakeups = 0
        self.dispatcher = DeliveryDispatcher(
            transactions=self.units,
            sender=self.sender,
            clock=self.clock,
            policy=POLICY,
            batch_size=10,
            after_commit=self._wake,
        )

    def _wake(self) -> None:
        self.wakeups += 1

    async def consume(self, event: CloudEvent) -> None:
        ctx = Context(notifications=self.notifications, sink=CollectingSink(), now=self.clock.now())
        await apply_batch([event], ctx)

    def outcome_events(self) -> list[CloudEvent]:
        return [event for _, _, event in self.sink.events]


@pytest.fixture
def harness() -> Harness:
    return Harness()


async def test_a_consenting_customer_gets_the_welcome(harness: Harness) -> None:
    cause = enrolled("c1", email="ada@example.com", locale="it-IT")
    await harness.consume(cause)

    assert await harness.dispatcher.dispatch_due() == 1

    (email,) = harness.sender.sent
    notification_id = welcome_id("c1", Channel.EMAIL)
    assert (email.to, email.notification_id, email.locale) == (
        "ada@example.com",
        notification_id,
        "it",
    )
    assert email.subject == "Benvenuto in Fedelta"
    delivery = harness.notifications.only()
    assert (delivery.status, delivery.attempts, delivery.sent_at, delivery.last_error) == (
        DeliveryStatus.SENT,
        1,
        NOW,
        None,
    )


async def test_a_sent_message_is_announced_through_the_outbox(harness: Harness) -> None:
    await harness.consume(enrolled("c1"))
    await harness.dispatcher.dispatch_due()

    ((topic, key, event),) = harness.sink.events
    delivery = harness.notifications.only()
    assert (topic, key, event.type) == (topics.NOTIFICATIONS, "c1", events.NOTIFICATION_DELIVERED)
    assert events.NotificationDelivered.model_validate(event.data) == events.NotificationDelivered(
        notification_id=delivery.notification_id,
        customer_id="c1",
        channel="email",
        template="welcome",
        attempt=1,
    )
    assert harness.wakeups == 1  # the relay is told right after the commit


async def test_a_sent_message_is_not_sent_again(harness: Harness) -> None:
    await harness.consume(enrolled("c1"))
    await harness.dispatcher.dispatch_due()
    harness.clock.advance(timedelta(hours=1))
    assert await harness.dispatcher.dispatch_due() == 0
    assert len(harness.sender.sent) == 1


async def test_no_consent_is_suppressed_without_a_send(harness: Harness) -> None:
    await harness.consume(enrolled("c1", consent_email=False))
    await harness.dispatcher.dispatch_due()
    assert harness.sender.attempts == 0
    delivery = harness.notifications.only()
    assert (delivery.status, delivery.last_error) == (DeliveryStatus.SUPPRESSED, NO_CONSENT)
    assert harness.sink.events == []
    assert harness.wakeups == 0


async def test_consent_is_read_at_send_time_not_at_scheduling(harness: Harness) -> None:
    await harness.consume(enrolled("c1", consent_email=True))
    contact = harness.notifications.contacts["c1"]
    harness.notifications.contacts["c1"] = replace(contact, consent_email=False)
    await harness.dispatcher.dispatch_due()
    assert harness.sender.sent == []
    assert harness.notifications.only().status is DeliveryStatus.SUPPRESSED


async def test_a_message_waits_for_its_contact_and_goes_when_it_arrives(harness: Harness) -> None:
    await harness.consume(tier_changed("c1", to_tier="gold"))
    await harness.dispatcher.dispatch_due()
    waiting = harness.notifications.only()
    assert waiting.status is DeliveryStatus.SCHEDULED
    assert waiting.next_attempt_at == NOW + POLICY.contact_recheck
    assert waiting.attempts == 0

    harness.clock.advance(timedelta(seconds=5))
    assert await harness.dispatcher.dispatch_due() == 0  # not looked at again before the recheck

    await harness.consume(enrolled("c1", email="ada@example.com"))
    harness.clock.advance(POLICY.contact_recheck)
    await harness.dispatcher.dispatch_due()
    tier_up = [e for e in harness.sender.sent if "Gold" in e.subject]
    assert len(tier_up) == 1
    assert "Gold" in tier_up[0].body


async def test_a_contact_that_never_arrives_ends_suppressed(harness: Harness) -> None:
    await harness.consume(tier_changed("c1"))
    while harness.clock.now() < NOW + POLICY.contact_wait:
        await harness.dispatcher.dispatch_due()
        harness.clock.advance(POLICY.contact_recheck)
    await harness.dispatcher.dispatch_due()
    delivery = harness.notifications.only()
    assert (delivery.status, delivery.last_error) == (DeliveryStatus.SUPPRESSED, NO_CONTACT)
    assert harness.sender.attempts == 0


async def test_a_temporary_failure_is_retried_with_backoff_then_sent(harness: Harness) -> None:
    await harness.consume(enrolled("c1"))
    harness.sender.failure = EmailDeliveryError("SMTPConnectError")
    await harness.dispatcher.dispatch_due()

    retrying = harness.notifications.only()
    assert (retrying.status, retrying.attempts, retrying.last_error) == (
        DeliveryStatus.SCHEDULED,
        1,
        "SMTPConnectError",
    )
    assert retrying.next_attempt_at == NOW + timedelta(seconds=10)

    harness.clock.advance(timedelta(seconds=9))
    assert await harness.dispatcher.dispatch_due() == 0  # not due yet

    harness.sender.failure = None
    harness.clock.advance(timedelta(seconds=1))
    await harness.dispatcher.dispatch_due()
    sent = harness.notifications.only()
    assert (sent.status, sent.attempts, sent.sent_at) == (
        DeliveryStatus.SENT,
        2,
        NOW + timedelta(seconds=10),
    )
    ((_, _, event),) = harness.sink.events
    assert event.data["attempt"] == 2


async def test_after_the_last_attempt_it_fails_and_says_so(harness: Harness) -> None:
    await harness.consume(enrolled("c1"))
    harness.sender.failure = EmailDeliveryError("SMTPServerDisconnected")
    for _ in range(POLICY.max_attempts):
        await harness.dispatcher.dispatch_due()
        harness.clock.advance(POLICY.retry_backoff_max)

    failed = harness.notifications.only()
    assert (failed.status, failed.attempts) == (DeliveryStatus.FAILED, POLICY.max_attempts)
    assert harness.sender.attempts == POLICY.max_attempts
    ((topic, key, event),) = harness.sink.events
    assert (topic, key, event.type) == (topics.NOTIFICATIONS, "c1", events.NOTIFICATION_FAILED)
    assert event.data["attempt"] == POLICY.max_attempts
    assert event.data["error"] == "SMTPServerDisconnected"

    harness.clock.advance(timedelta(days=1))
    assert await harness.dispatcher.dispatch_due() == 0  # failed is final


async def test_a_permanent_refusal_fails_at_the_first_attempt(harness: Harness) -> None:
    await harness.consume(enrolled("c1"))
    harness.sender.failure = EmailDeliveryError("SMTPRecipientsRefused 550", permanent=True)
    await harness.dispatcher.dispatch_due()
    failed = harness.notifications.only()
    assert (failed.status, failed.attempts) == (DeliveryStatus.FAILED, 1)


async def test_an_unexpected_error_is_recorded_by_its_kind_only(harness: Harness) -> None:
    class LeakySender(FakeSender):
        async def send(self, email: object) -> None:
            raise RuntimeError("could not reach ada@example.com")

    harness.dispatcher.sender = LeakySender()
    await harness.consume(enrolled("c1"))
    await harness.dispatcher.dispatch_due()
    assert harness.notifications.only().last_error == "RuntimeError"


async def test_a_message_of_an_unknown_template_fails_without_a_send(harness: Harness) -> None:
    await harness.consume(enrolled("c1"))
    broken = schedule(
        notification_id="n-broken",
        customer_id="c1",
        channel=Channel.EMAIL,
        template="no_such_template",
        cause_event_id="e-broken",
        now=NOW - timedelta(seconds=1),
    )
    await harness.notifications.schedule([broken])
    await harness.dispatcher.dispatch_due()
    assert harness.notifications.deliveries["n-broken"].status is DeliveryStatus.FAILED
    assert [e.subject for e in harness.sender.sent] == ["Welcome to Fedelta"]


async def test_one_round_takes_at_most_a_batch_oldest_first(harness: Harness) -> None:
    for number in range(12):
        await harness.consume(enrolled(f"c{number:02d}"))
        harness.clock.advance(timedelta(seconds=1))
    assert await harness.dispatcher.dispatch_due() == 10
    # One transaction per batch, committed right after its sends: a crash can send again at
    # most the batch in flight.
    assert harness.units.commits == 1
    assert [e.notification_id for e in harness.sender.sent] == [
        d.notification_id
        for d in sorted(harness.notifications.deliveries.values(), key=lambda d: d.created_at)[:10]
    ]
    assert await harness.dispatcher.dispatch_due() == 2


async def test_run_keeps_dispatching_until_stopped(harness: Harness) -> None:
    harness.dispatcher.interval = 0.01
    await harness.consume(enrolled("c1"))
    task = asyncio.create_task(harness.dispatcher.run())
    for _ in range(200):
        if harness.sender.sent:
            break
        await asyncio.sleep(0.01)
    await harness.dispatcher.stop()
    await asyncio.wait_for(task, timeout=2)
    assert len(harness.sender.sent) == 1


async def test_every_email_carries_the_customers_unsubscribe_link(harness: Harness) -> None:
    harness.dispatcher.unsubscribe_url = lambda customer_id: f"https://x.example/u/{customer_id}"
    await harness.consume(enrolled("c1", locale="pl"))
    await harness.dispatcher.dispatch_due()
    (email,) = harness.sender.sent
    assert email.unsubscribe_url == "https://x.example/u/c1"
    assert email.body.rstrip().endswith("Wypisz się: https://x.example/u/c1")
    assert email.html is not None and 'href="https://x.example/u/c1"' in email.html
