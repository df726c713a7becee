"""The dispatcher in sets, on fakes: lanes, a few statements per batch, concurrent sends, and
batch decisions that give what deciding the messages one by one gives (the daily cap exact
within a batch, whatever its composition and whichever sends fail)."""

from __future__ import annotations

import asyncio
from datetime import time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.notifications.adapters.smtp import EmailDeliveryError, OutgoingEmail
from services.notifications.dispatcher import DeliveryDispatcher
from services.notifications.domain.model import (
    PERSONAL_CHANNELS,
    TRANSACTIONAL_TEMPLATES,
    Channel,
    Contact,
    Delivery,
    DeliveryPolicy,
    DeliveryStatus,
    DispatchReads,
    HarassmentPolicy,
    Hold,
    Lane,
    QuietHours,
    Send,
    SentMessage,
    Wait,
    decide_batch,
    lane_of,
    mark_sent,
    schedule,
)
from shared.clock import FixedClock
from shared.messaging.outbox import CollectingSink
from tests.support.fakes.notifications import NOW, FakeNotifications, FakeUnits

# Noon in UTC: no quiet hours, and the customer's day is the UTC day.
NO_QUIET = QuietHours(start=time(0, 0), end=time(0, 0))
HARASSMENT = HarassmentPolicy(quiet_hours=NO_QUIET, daily_cap=3)
POLICY = DeliveryPolicy(max_attempts=3, retry_backoff=timedelta(seconds=10))


def contact(customer_id: str, *, consent: bool = True) -> Contact:
    return Contact(
        customer_id=customer_id,
        locale="en",
        time_zone="UTC",
        updated_at=NOW,
        email=f"{customer_id}@example.com",
        consent_email=consent,
    )


def message(
    number: int,
    customer_id: str,
    *,
    template: str = "win_back",
    cause: str | None = None,
    age: int = 0,
) -> Delivery:
    return schedule(
        notification_id=f"n{number:03d}",
        customer_id=customer_id,
        channel=Channel.EMAIL,
        template=template,
        cause_event_id=cause or f"e{number:03d}",
        now=NOW - timedelta(seconds=age),
    )


class SelectiveSender:
    """Refuses the messages named in `failing` (a temporary failure), accepts the others;
    counts the sends in flight at once."""

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.failing = failing
        self.sent: list[OutgoingEmail] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def send(self, email: OutgoingEmail) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)
            if email.notification_id in self.failing:
                raise EmailDeliveryError("SMTPConnectError")
            self.sent.append(email)
        finally:
            self.in_flight -= 1


class Harness:
    def __init__(self, *, batch_size: int = 100, failing: frozenset[str] = frozenset()) -> None:
        self.notifications = FakeNotifications()
        self.sink = CollectingSink()
        self.units = FakeUnits(self.notifications, self.sink)
        self.sender = SelectiveSender(failing)
        self.dispatcher = DeliveryDispatcher(
            transactions=self.units,
            sender=self.sender,
            clock=FixedClock(NOW),
            policy=POLICY,
            harassment=HARASSMENT,
            batch_size=batch_size,
            concurrency=4,
        )

    def add(self, *deliveries: Delivery) -> None:
        for delivery in deliveries:
            self.notifications.deliveries[delivery.notification_id] = delivery
            customer = delivery.customer_id
            self.notifications.contacts.setdefault(customer, contact(customer))

    async def drain(self) -> None:
        """Rounds until nothing is due at the fixed instant (bounded)."""
        for _ in range(100):
            if await self.dispatcher.dispatch_due() == 0:
                return
        raise AssertionError("the dispatcher kept finding due messages")


def test_the_transactional_lane_is_the_answer_to_what_the_customer_did() -> None:
    assert {t for t in TRANSACTIONAL_TEMPLATES if lane_of(t) is Lane.TRANSACTIONAL} == {
        "welcome",
        "redemption_confirmed",
        "tier_up",
        # Engagement's answers to a purchase.
        "stamp_card_completed",
        "challenge_completed",
        "badge_earned",
        "surprise",
    }
    for bulk in (
        "points_expiring",
        "points_earned",
        "win_back",
        "tier_downgrade_warning",
        "birthday",
    ):
        assert lane_of(bulk) is Lane.BULK
    assert lane_of("a_template_added_later") is Lane.BULK


async def test_a_welcome_goes_out_in_the_first_batch_ahead_of_an_older_bulk() -> None:
    harness = Harness(batch_size=10)
    harness.add(*(message(n, f"c{n}", age=600 - n) for n in range(50)))
    harness.add(message(99, "new", template="welcome"))

    assert await harness.dispatcher.dispatch_due() == 10

    assert harness.sender.sent[0].notification_id == "n099"
    assert harness.notifications.deliveries["n099"].status is DeliveryStatus.SENT
    # Then the bulk, oldest first.
    assert [e.notification_id for e in harness.sender.sent[1:]] == [f"n{n:03d}" for n in range(9)]


async def test_a_batch_costs_a_few_statements_and_one_commit_whatever_its_size() -> None:
    harness = Harness(batch_size=100)
    harness.add(*(message(n, f"c{n}") for n in range(80)))
    harness.notifications.contacts["c3"] = contact("c3", consent=False)

    assert await harness.dispatcher.dispatch_due() == 80

    assert len(harness.sender.sent) == 79
    assert harness.units.commits == 1
    assert harness.notifications.claims == 1
    # contacts, preferences, webhooks, sends of the day, and one multi-row save...
    assert harness.notifications.statements == 5
    # ...and the 79 notification.delivered events in one outbox statement.
    assert harness.units.outbox.statements == 1
    assert len(harness.sink.events) == 79


async def test_sends_of_a_batch_are_concurrent_up_to_the_limit() -> None:
    harness = Harness()
    harness.add(*(message(n, f"c{n}") for n in range(20)))
    await harness.dispatcher.dispatch_due()
    assert len(harness.sender.sent) == 20
    assert harness.sender.most_in_flight == 4


async def test_two_messages_of_one_customer_in_a_batch_count_against_one_cap() -> None:
    harness = Harness()
    harness.add(*(message(n, "c1", age=10 - n) for n in range(5)))

    await harness.dispatcher.dispatch_due()

    assert len(harness.sender.sent) == 3
    held = [d for d in harness.notifications.deliveries.values() if d.hold is Hold.FREQUENCY_CAP]
    assert sorted(d.notification_id for d in held) == ["n003", "n004"]


async def test_the_cap_counts_only_the_sends_that_went_through() -> None:
    # The first three fail: the fourth, deferred while they were planned, then goes out.
    harness = Harness(failing=frozenset({"n000", "n001", "n002"}))
    harness.add(*(message(n, "c1", age=10 - n) for n in range(4)))

    await harness.dispatcher.dispatch_due()

    assert [e.notification_id for e in harness.sender.sent] == ["n003"]
    assert harness.notifications.deliveries["n003"].status is DeliveryStatus.SENT
    assert harness.units.commits == 2  # the batch, then the one it deferred


def test_a_message_held_by_planned_sends_alone_is_deferred() -> None:
    due = [message(n, "c1", age=10 - n) for n in range(4)]
    reads = DispatchReads(
        contacts={"c1": contact("c1")}, sent={"c1": [SentMessage("old", NOW - timedelta(hours=1))]}
    )
    decided = decide_batch(due, reads, NOW, POLICY, HARASSMENT, [Channel.EMAIL])
    kinds = [type(decision).__name__ if decision else None for _, decision in decided]
    # One sent earlier today and two planned: the third planned would reach the cap only with
    # the planned ones, so it is decided again once they are recorded.
    assert kinds == ["Send", "Send", None, None]


def test_a_message_held_by_recorded_sends_is_held_at_once() -> None:
    earlier = [SentMessage(f"old{n}", NOW - timedelta(hours=1)) for n in range(3)]
    reads = DispatchReads(contacts={"c1": contact("c1")}, sent={"c1": earlier})
    [(_, decision)] = decide_batch(
        [message(1, "c1")], reads, NOW, POLICY, HARASSMENT, [Channel.EMAIL]
    )
    assert isinstance(decision, Wait) and decision.hold is Hold.FREQUENCY_CAP


def test_one_cause_on_two_channels_counts_once() -> None:
    email = message(1, "c1", cause="same")
    sms = schedule(
        notification_id="n-sms",
        customer_id="c1",
        channel=Channel.SMS,
        template="win_back",
        cause_event_id="same",
        now=NOW,
    )
    earlier = [SentMessage(f"old{n}", NOW - timedelta(hours=1)) for n in range(2)]
    reads = DispatchReads(contacts={"c1": contact("c1")}, sent={"c1": earlier})
    decided = decide_batch([email, sms], reads, NOW, POLICY, HARASSMENT, list(Channel))
    assert isinstance(decided[0][1], Send)
    # No phone: suppressed for that reason, never held by the cap.
    assert type(decided[1][1]).__name__ == "Suppress"


# -- batches give what one message at a time gives ----------------------------------------


MESSAGES = st.lists(
    st.tuples(
        st.sampled_from(["c1", "c2", "c3"]),
        st.sampled_from(["win_back", "welcome", "points_expiring", "tier_up"]),
        st.integers(min_value=0, max_value=5),  # the cause: some messages share one
        st.booleans(),  # whether its sends fail
    ),
    max_size=14,
)


def scenario(drawn: list[tuple[str, str, int, bool]]) -> tuple[list[Delivery], frozenset[str]]:
    deliveries: list[Delivery] = []
    failing = set()
    for number, (customer, template, cause, fails) in enumerate(drawn):
        delivery = message(
            number, customer, template=template, cause=f"{customer}-e{cause}", age=20 - number
        )
        if any(
            (d.cause_event_id, d.template) == (delivery.cause_event_id, template)
            for d in deliveries
        ):
            continue  # one message per cause, channel and template, as the schedule keeps it
        deliveries.append(delivery)
        if fails:
            failing.add(delivery.notification_id)
    return deliveries, frozenset(failing)


@settings(max_examples=150, deadline=None)
@given(
    drawn=MESSAGES,
    sent_before=st.dictionaries(st.sampled_from(["c1", "c2", "c3"]), st.integers(0, 3)),
    batch_size=st.integers(min_value=2, max_value=20),
)
async def test_a_batch_decides_as_one_message_at_a_time_and_never_exceeds_the_cap(
    drawn: list[tuple[str, str, int, bool]], sent_before: dict[str, int], batch_size: int
) -> None:
    deliveries, failing = scenario(drawn)
    earlier = [
        mark_sent(message(900 + n * 10 + k, customer, cause=f"old-{customer}-{k}"), NOW)
        for n, (customer, count) in enumerate(sent_before.items())
        for k in range(count)
    ]
    outcomes = []
    for size in (1, batch_size):
        harness = Harness(batch_size=size, failing=failing)
        harness.add(*earlier, *deliveries)
        await harness.drain()
        outcomes.append(harness.notifications.deliveries)
        for customer in ("c1", "c2", "c3"):
            causes = {
                d.cause_event_id
                for d in harness.notifications.deliveries.values()
                if d.customer_id == customer
                and d.status is DeliveryStatus.SENT
                and d.channel in PERSONAL_CHANNELS
            }
            assert len(causes) <= max(HARASSMENT.daily_cap, sent_before.get(customer, 0))
    one_at_a_time, in_batches = outcomes
    assert in_batches == one_at_a_time
