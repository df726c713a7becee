"""Property: with imported members among others, redelivery (any interleaving of the two
topics, events published twice, any cut into batches) and a replay (each customer rebuilt
from their history) give the same tiers as the events applied once, on time."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from services.tiers.domain.model import (
    CustomerTier,
    DowngradePolicy,
    Program,
    SpendBasis,
    review_due,
)
from services.tiers.domain.rebuild import attribute_refunds, rebuild_customer
from services.tiers.handlers import Context, apply_batch
from shared.messaging import events
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import CollectingSink
from tests.support import factories
from tests.support.fakes.tiers import FakeTiers

ENROLLED_AT = datetime(2025, 1, 10, 9, tzinfo=UTC)
AMOUNTS = [Decimal(a) for a in ("120", "480", "900", "1600", "3100")]
CUSTOMERS = ("c1", "c2", "c3")


@dataclass(frozen=True)
class Story:
    program: Program
    customers_topic: list[CloudEvent]  # the enrolments
    # Imports (each right after its member's enrolment), purchases and refunds.
    purchases_topic: list[CloudEvent]
    as_of: datetime


def _import(customer_id: str, tier: str | None, since: datetime | None) -> CloudEvent:
    payload = events.PointsImported(
        customer_id=customer_id,
        partner_id="demo",
        tier=tier,
        tier_since=since,
        imported_at=ENROLLED_AT,
    )
    return factories.ingest_event(payload, customer_id, ENROLLED_AT, "demo")


@st.composite
def stories(draw: st.DrawFn) -> Story:
    program = Program(
        basis=draw(st.sampled_from(SpendBasis)),
        downgrade_policy=draw(st.sampled_from(DowngradePolicy)),
        time_zone=draw(st.sampled_from(["UTC", "Europe/Helsinki"])),
    )
    enrolments, topic = [], []
    for customer_id in CUSTOMERS:
        enrolments.append(factories.enrolment(customer_id, at=ENROLLED_AT, imported=True))
        tier = draw(st.sampled_from([None, "bronze", "silver", "gold", "platinum"]))
        if tier is not None or draw(st.booleans()):
            back = draw(st.one_of(st.none(), st.integers(0, 900)))
            since = None if back is None else ENROLLED_AT - timedelta(days=back, hours=1)
            topic.append(_import(customer_id, tier, since))
        days = sorted(draw(st.lists(st.integers(0, 800), max_size=4)))
        for n, day in enumerate(days):
            at = ENROLLED_AT + timedelta(days=day, hours=n + 1)
            total = draw(st.sampled_from(AMOUNTS))
            topic.append(
                factories.purchase(customer_id, total, at=at, purchase_id=f"{customer_id}-p{n}")
            )
            if draw(st.booleans()):
                later = at + timedelta(days=draw(st.integers(0, 60)), minutes=1)
                topic.append(
                    factories.refund(
                        customer_id,
                        f"{customer_id}-p{n}",
                        total,
                        at=later,
                        refund_id=f"{customer_id}-r{n}",
                    )
                )
    topic.sort(key=lambda e: e.time)
    # After the last event: a replay rebuilds what happened by then.
    last = max((e.time for e in topic), default=ENROLLED_AT)
    as_of = last + timedelta(days=draw(st.integers(0, 700)))
    return Story(program, enrolments, topic, as_of)


def _again(event: CloudEvent) -> CloudEvent:
    """The same payload published again: a new event id, as a producer retry makes."""
    return CloudEvent.model_validate(event.model_dump() | {"id": f"{event.id}-again"})


def _review(story: Story, tiers: FakeTiers, as_of: datetime) -> None:
    """The review job as of `as_of`."""
    for customer_id, customer in list(tiers.customers.items()):
        activities = [a for a in tiers.activity.values() if a.customer_id == customer_id]
        tiers.customers[customer_id] = review_due(
            story.program, customer, activities, as_of
        ).customer


async def _live(
    story: Story, deliveries: list[CloudEvent], cuts: list[int], *, on_time: bool = False
) -> FakeTiers:
    """The live service given these deliveries in these batches (`on_time`: one at a time,
    the review job run as of each event's time before it), then reviewed as of the story's
    end."""
    tiers, sink = FakeTiers(), CollectingSink()
    context = Context(tiers=tiers, sink=sink, program=story.program, now=ENROLLED_AT)
    if on_time:
        cuts = list(range(len(deliveries)))
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(deliveries)), len(deliveries)]
    for start, end in pairwise(bounds):
        if start < end:
            if on_time:
                _review(story, tiers, deliveries[start].time)
            await apply_batch(deliveries[start:end], context)
    _review(story, tiers, story.as_of)
    return tiers


def _rebuilt(story: Story, tiers: FakeTiers) -> dict[str, CustomerTier]:
    """Each customer rebuilt from what the live service recorded, as a replay does."""
    rebuilt: dict[str, CustomerTier] = {}
    for customer_id, customer in tiers.customers.items():
        activities = [a for a in tiers.activity.values() if a.customer_id == customer_id]
        refunds = {a.activity_id: a.refund_of for a in activities if a.refund_of is not None}
        outcome = rebuild_customer(
            story.program,
            customer_id,
            enrolled_at=customer.enrolled_at,
            activities=attribute_refunds(activities, refunds),
            refunds=refunds,
            as_of=story.as_of,
        )
        assert outcome is not None
        rebuilt[customer_id] = outcome.customer
    return rebuilt


def _tiers(customers: dict[str, CustomerTier]) -> dict[str, tuple[str, datetime, datetime]]:
    return {c: (t.tier, t.since, t.review_at) for c, t in customers.items()}


def _in_order(story: Story) -> list[CloudEvent]:
    return [*story.customers_topic, *story.purchases_topic]


def _redelivered(story: Story, data: st.DataObject) -> tuple[list[CloudEvent], list[int]]:
    """The two topics interleaved anyhow, each in its own order; some events published
    again, each somewhere after the original; cut anywhere into batches."""
    deliveries = list(story.purchases_topic)
    for enrolment in story.customers_topic:
        position = data.draw(st.integers(0, len(deliveries)), label="enrolment at")
        deliveries.insert(position, enrolment)
    for original in data.draw(st.lists(st.sampled_from(deliveries), max_size=4), label="twice"):
        after = deliveries.index(original) + 1
        deliveries.insert(data.draw(st.integers(after, len(deliveries))), _again(original))
    cuts = data.draw(st.lists(st.integers(0, len(deliveries)), max_size=4), label="cuts")
    return deliveries, cuts


@settings(max_examples=150, deadline=None)
@given(story=stories(), data=st.data())
async def test_redelivery_gives_the_same_tiers_with_imported_members(
    story: Story, data: st.DataObject
) -> None:
    in_order = _in_order(story)
    expected = await _live(story, in_order, cuts=list(range(len(in_order))))
    deliveries, cuts = _redelivered(story, data)
    assert _tiers((await _live(story, deliveries, cuts)).customers) == _tiers(expected.customers)


@settings(max_examples=150, deadline=None)
@given(story=stories(), data=st.data())
async def test_a_replay_of_a_redelivered_history_gives_the_tiers_of_the_events_on_time(
    story: Story, data: st.DataObject
) -> None:
    on_time = await _live(story, _in_order(story), [], on_time=True)
    deliveries, cuts = _redelivered(story, data)
    redelivered = await _live(story, deliveries, cuts)
    assert _tiers(_rebuilt(story, redelivered)) == _tiers(on_time.customers)
    assert _tiers(_rebuilt(story, on_time)) == _tiers(on_time.customers)
