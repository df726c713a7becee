"""Property: a customer's tier is a function of their qualifying history and the review
policy, whatever order the two topics' events are redelivered in (each topic keeps a
customer's order), however they are cut into batches, and whatever is delivered twice."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from services.tiers.domain.model import (
    DowngradePolicy,
    Program,
    SpendBasis,
    review_due,
)
from services.tiers.handlers import Context, apply_batch
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import CollectingSink
from tests.support import factories
from tests.support.fakes.tiers import FakeTiers

ENROLLED_AT = datetime(2025, 1, 10, 9, tzinfo=UTC)
AMOUNTS = [Decimal(a) for a in ("120", "250", "480", "900", "1600", "3100")]


@dataclass(frozen=True)
class Story:
    program: Program
    purchases_topic: list[CloudEvent]  # the customer's order on the purchases topic
    enrolment: CloudEvent
    reviewed_as_of: datetime


def _enrolment() -> CloudEvent:
    return factories.enrolment("c1", at=ENROLLED_AT)


@st.composite
def stories(draw: st.DrawFn) -> Story:
    program = Program(
        basis=draw(st.sampled_from(SpendBasis)),
        downgrade_policy=draw(st.sampled_from(DowngradePolicy)),
        time_zone=draw(st.sampled_from(["UTC", "Europe/Helsinki", "America/New_York"])),
    )
    # Purchases as they were published: mostly in the order they occurred, some reported late.
    days = draw(st.lists(st.integers(0, 900), min_size=1, max_size=7))
    topic: list[CloudEvent] = []
    for n, day in enumerate(days):
        at = ENROLLED_AT + timedelta(days=day, hours=n)
        total = draw(st.sampled_from(AMOUNTS))
        topic.append(factories.purchase("c1", total, at=at, purchase_id=f"p{n}"))
        if draw(st.booleans()):  # refunded in part, some days later, right after on the topic
            later = at + timedelta(days=draw(st.integers(0, 60)), minutes=1)
            topic.append(factories.refund("c1", f"p{n}", total / 2, at=later, refund_id=f"r{n}"))
    as_of = ENROLLED_AT + timedelta(days=draw(st.integers(0, 1500)))
    return Story(program, topic, _enrolment(), as_of)


def _again(event: CloudEvent) -> CloudEvent:
    """The same payload published again: a new event id, as a producer retry makes."""
    return CloudEvent.model_validate(event.model_dump() | {"id": f"{event.id}-again"})


async def _tier_after(story: Story, deliveries: list[CloudEvent], cuts: list[int]) -> str:
    tiers, sink = FakeTiers(), CollectingSink()
    context = Context(tiers=tiers, sink=sink, program=story.program, now=ENROLLED_AT)
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(deliveries)), len(deliveries)]
    for start, end in pairwise(bounds):
        if start < end:
            await apply_batch(deliveries[start:end], context)
    customer = tiers.customers["c1"]
    activities = [a for a in tiers.activity.values() if a.customer_id == "c1"]
    return review_due(story.program, customer, activities, story.reviewed_as_of).customer.tier


@settings(max_examples=150, deadline=None)
@given(story=stories(), data=st.data())
async def test_the_tier_does_not_depend_on_the_order_of_redelivery(
    story: Story, data: st.DataObject
) -> None:
    in_order = [story.enrolment, *story.purchases_topic]
    expected = await _tier_after(story, in_order, cuts=list(range(len(in_order))))

    # The enrolment anywhere among the purchases: the topics are read independently.
    topic = list(story.purchases_topic)
    position = data.draw(st.integers(0, len(topic)), label="enrolment at")
    deliveries = [*topic[:position], story.enrolment, *topic[position:]]
    # Some events published again, each somewhere after the original.
    for original in data.draw(st.lists(st.sampled_from(deliveries), max_size=4), label="twice"):
        after = deliveries.index(original) + 1
        deliveries.insert(data.draw(st.integers(after, len(deliveries))), _again(original))
    cuts = data.draw(st.lists(st.integers(0, len(deliveries)), max_size=4), label="cuts")

    assert await _tier_after(story, deliveries, cuts) == expected
