"""Visits and qualifying referrals on a fake repository (no database, no Kafka): what the
consumer records, what the `qualify-referrals` job decides, and the properties that the route
taken never changes the outcome of a redelivery or a replay."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.tiers.domain.model import (
    QUALIFYING_REFERRALS,
    CustomerTier,
    Match,
    Program,
    QualifyingActivity,
    SpendBasis,
    TierDefinition,
    progress,
    review_due,
    standing,
    to_keep_tier,
)
from services.tiers.domain.rebuild import attribute_refunds, rebuild_customer
from services.tiers.handlers import (
    Context,
    JobContext,
    apply_batch,
    qualify_referrals,
    warn_downgrades,
)
from shared.messaging import events
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import CollectingSink
from tests.support import factories
from tests.support.fakes.tiers import FakeReviews, FakeTiers

ENROLLED_AT = datetime(2026, 1, 10, 14, tzinfo=UTC)
WINDOW = 14
PROGRAM = Program(
    tiers=(
        TierDefinition("bronze", Decimal(0)),
        TierDefinition("silver", Decimal(500), visits=3),
        TierDefinition("gold", Decimal(2000), referrals=2),
        TierDefinition("platinum", Decimal(5000), referrals=4, visits=8, match=Match.ALL),
    ),
    referral_return_window_days=WINDOW,
)


def friend(customer_id: str, at: datetime = ENROLLED_AT, referrer: str = "x") -> CloudEvent:
    return factories.enrolment(customer_id, at=at, referred_by=referrer)


def bought(customer_id: str, purchase_id: str, total: str, at: datetime) -> CloudEvent:
    return factories.purchase(customer_id, total, at=at, purchase_id=purchase_id)


def returned(
    customer_id: str, purchase_id: str, amount: str, at: datetime, refund_id: str
) -> CloudEvent:
    return factories.refund(customer_id, purchase_id, amount, at=at, refund_id=refund_id)


async def consume(
    tiers: FakeTiers, sink: CollectingSink, *batch: CloudEvent, program: Program = PROGRAM
) -> None:
    await apply_batch(list(batch), Context(tiers=tiers, sink=sink, program=program, now=NOW))


async def qualify(
    tiers: FakeTiers, sink: CollectingSink, as_of: datetime, program: Program = PROGRAM
) -> int:
    """The job's chunks until none is left, as `ChunkedTierJob` runs them (chunks of 2)."""
    context = JobContext(tiers=tiers, sink=sink, program=program, now=as_of)
    after, changed = "", 0
    while (done := await qualify_referrals(as_of, after, 2, context)).last_customer_id:
        after, changed = done.last_customer_id, changed + done.events
    return changed


NOW = ENROLLED_AT + timedelta(days=30)
FIRST = ENROLLED_AT + timedelta(days=1)
QUALIFIES_AT = FIRST + timedelta(days=WINDOW)


def tier_changes(sink: CollectingSink) -> list[events.TierChanged]:
    return [
        events.TierChanged.model_validate(event.data)
        for _, _, event in sink.events
        if event.type == events.TIER_CHANGED
    ]


# -- visits ----------------------------------------------------------------------------------


async def test_a_purchase_is_a_visit_until_it_is_wholly_refunded() -> None:
    tiers, sink = FakeTiers(), CollectingSink()
    await consume(tiers, sink, bought("c1", "p1", "100", FIRST))
    await consume(tiers, sink, returned("c1", "p1", "40", FIRST + timedelta(days=1), "r1"))
    await consume(
        tiers,
        sink,
        returned("c1", "p1", "60", FIRST + timedelta(days=2), "r2"),
        returned("c1", "p1", "60", FIRST + timedelta(days=2), "r2"),  # twice: counts once
    )
    visits = {a.activity_id: a.visits for a in tiers.activity.values()}
    assert visits == {"purchase:demo:p1": 1, "refund:demo:r1": 0, "refund:demo:r2": -1}
    assert standing(PROGRAM, tiers.activity.values(), NOW).visits == 0


async def test_refunds_in_the_purchases_batch_take_the_visit_back_once() -> None:
    tiers, sink = FakeTiers(), CollectingSink()
    await consume(
        tiers,
        sink,
        bought("c1", "p1", "100", FIRST),
        returned("c1", "p1", "100", FIRST, "r1"),
        returned("c1", "p1", "5", FIRST, "r2"),  # beyond the whole: no second visit taken
    )
    assert standing(PROGRAM, tiers.activity.values(), NOW).visits == 0
    assert tiers.activity["refund:demo:r2"].visits == 0


async def test_three_visits_make_silver_by_the_visits_route() -> None:
    tiers, sink = FakeTiers(), CollectingSink()
    await consume(
        tiers, sink, *(bought("c1", f"p{n}", "5", FIRST + timedelta(hours=n)) for n in range(3))
    )
    assert tiers.customers["c1"].tier == "silver"
    [change] = tier_changes(sink)
    assert change.reason == "qualifying_visits"
    assert (change.next_tier, change.amount_to_next_tier, change.referrals_to_next_tier) == (
        "gold",
        Decimal(1985),
        2,
    )
    assert (change.visits_to_next_tier, change.next_tier_match) == (None, "any")


async def test_a_spend_only_programs_tier_changed_carries_no_route() -> None:
    tiers, sink = FakeTiers(), CollectingSink()
    await consume(tiers, sink, bought("c1", "p1", "600", FIRST), program=Program())
    [change] = tier_changes(sink)
    assert (change.to_tier, change.reason) == ("silver", "qualifying_spend")
    assert (change.next_tier, change.amount_to_next_tier, change.next_tier_match) == (
        None,
        None,
        None,
    )


# -- referrals -------------------------------------------------------------------------------


async def test_a_referral_qualifies_when_the_window_has_passed_and_upgrades_at_once() -> None:
    tiers, sink = FakeTiers(), CollectingSink()
    await consume(
        tiers,
        sink,
        factories.enrolment("x", at=ENROLLED_AT),
        friend("f1"),
        friend("f2"),
        bought("f1", "p1", "30", FIRST),
        bought("f2", "p2", "30", FIRST - timedelta(hours=1)),
    )
    assert await qualify(tiers, sink, QUALIFIES_AT - timedelta(seconds=1)) == 0
    assert tiers.customers["x"].tier == "bronze"
    assert await qualify(tiers, sink, QUALIFIES_AT) == 1
    x = tiers.customers["x"]
    assert (x.tier, x.since) == ("gold", QUALIFIES_AT)
    [change] = tier_changes(sink)
    assert (change.customer_id, change.to_tier, change.reason) == (
        "x",
        "gold",
        QUALIFYING_REFERRALS,
    )
    # The way on to platinum (5,000 spend and 4 referrals and 8 visits), by each route.
    assert (change.next_tier, change.next_tier_match) == ("platinum", "all")
    assert (change.amount_to_next_tier, change.referrals_to_next_tier) == (Decimal(5000), 2)
    assert change.visits_to_next_tier == 8
    assert {r: f.status for r, f in tiers.referrals.items()} == {
        "f1": "qualified",
        "f2": "qualified",
    }
    # Run again: nothing left to decide, nothing announced twice.
    assert await qualify(tiers, sink, QUALIFIES_AT + timedelta(days=3)) == 0
    assert len(tier_changes(sink)) == 1


async def test_a_whole_refund_within_the_window_disqualifies_a_referral() -> None:
    tiers, sink = FakeTiers(), CollectingSink()
    await consume(
        tiers,
        sink,
        factories.enrolment("x", at=ENROLLED_AT),
        friend("f1"),
        friend("f2"),
        bought("f1", "p1", "30", FIRST),
        returned("f1", "p1", "10", FIRST + timedelta(days=2), "r1"),
        returned("f1", "p1", "20", QUALIFIES_AT, "r2"),  # the whole, on the window's last instant
        bought("f2", "p2", "30", FIRST),
        returned("f2", "p2", "30", QUALIFIES_AT + timedelta(seconds=1), "r3"),  # too late
    )
    await qualify(tiers, sink, NOW)
    assert {r: f.status for r, f in tiers.referrals.items()} == {
        "f1": "disqualified",
        "f2": "qualified",
    }
    assert standing(PROGRAM, tiers.activity.values(), NOW).referrals == 1


async def test_the_first_purchase_decides_even_when_reported_before_the_enrolment() -> None:
    tiers, sink = FakeTiers(), CollectingSink()
    # The purchases topic read ahead of the customers topic; a later purchase first.
    await consume(tiers, sink, bought("f1", "p2", "50", FIRST + timedelta(days=5)))
    await consume(tiers, sink, factories.enrolment("x", at=ENROLLED_AT), friend("f1"))
    assert tiers.referrals["f1"].first_purchase is not None
    # Reported late: an earlier purchase becomes the first, wholly refunded in its window.
    await consume(
        tiers,
        sink,
        bought("f1", "p1", "20", FIRST),
        returned("f1", "p1", "20", FIRST + timedelta(days=1), "r1"),
    )
    await qualify(tiers, sink, NOW + timedelta(days=30))
    assert tiers.referrals["f1"].status == "disqualified"


async def test_a_referral_waits_for_its_referrer_to_be_known() -> None:
    tiers, sink = FakeTiers(), CollectingSink()
    await consume(
        tiers,
        sink,
        friend("f1"),
        friend("f2"),
        bought("f1", "p1", "30", FIRST),
        bought("f2", "p2", "30", FIRST),
    )
    assert await qualify(tiers, sink, NOW) == 0  # x's enrolment not read yet
    assert {f.status for f in tiers.referrals.values()} == {"pending"}
    await consume(tiers, sink, factories.enrolment("x", at=ENROLLED_AT))
    assert await qualify(tiers, sink, NOW) == 1
    assert (tiers.customers["x"].tier, tiers.customers["x"].since) == ("gold", QUALIFIES_AT)


async def test_nobody_refers_themselves_and_a_member_is_referred_once() -> None:
    tiers, sink = FakeTiers(), CollectingSink()
    await consume(tiers, sink, friend("f1", referrer="f1"))
    assert tiers.referrals == {}
    await consume(tiers, sink, friend("f2", referrer="x"), friend("f2", referrer="y"))
    await consume(tiers, sink, friend("f2", referrer="z"))
    assert tiers.referrals["f2"].referrer_id == "x"


async def test_a_spend_only_program_records_referrals_but_they_raise_no_tier() -> None:
    tiers, sink = FakeTiers(), CollectingSink()
    spend_only = Program()
    await consume(
        tiers,
        sink,
        factories.enrolment("x", at=ENROLLED_AT),
        *(friend(f"f{n}") for n in range(6)),
        *(bought(f"f{n}", f"p{n}", "10", FIRST) for n in range(6)),
        program=spend_only,
    )
    await qualify(tiers, sink, NOW, program=spend_only)
    assert standing(spend_only, tiers.activity.values(), NOW).referrals == 6
    assert tiers.customers["x"].tier == "bronze"
    assert tier_changes(sink) == []


@pytest.mark.parametrize("chunk", [1, 2, 50])
async def test_the_job_works_through_every_due_referral_in_chunks(chunk: int) -> None:
    tiers, sink = FakeTiers(), CollectingSink()
    await consume(
        tiers,
        sink,
        *(factories.enrolment(f"x{n}", at=ENROLLED_AT) for n in range(3)),
        *(friend(f"f{n}", referrer=f"x{n % 3}") for n in range(7)),
        *(bought(f"f{n}", f"p{n}", "10", FIRST) for n in range(7)),
    )
    context = JobContext(tiers=tiers, sink=sink, program=PROGRAM, now=NOW)
    after, seen = "", 0
    while (done := await qualify_referrals(NOW, after, chunk, context)).last_customer_id:
        after, seen = done.last_customer_id, seen + done.customers
    assert seen == 7
    assert {c: tiers.customers[c].tier for c in ("x0", "x1", "x2")} == {
        "x0": "gold",  # f0, f3, f6
        "x1": "gold",  # f1, f4
        "x2": "gold",  # f2, f5
    }


# -- properties: the route taken never changes the outcome -----------------------------------


@dataclass(frozen=True)
class Story:
    program: Program
    topics: list[list[CloudEvent]]  # each customer's events on one topic, in topic order
    as_of: datetime


def _program(draw: st.DrawFn) -> Program:
    return Program(
        tiers=(
            TierDefinition("bronze", Decimal(0)),
            TierDefinition("silver", Decimal(500), visits=3),
            TierDefinition("gold", Decimal(2000), referrals=2, match=draw(st.sampled_from(Match))),
            TierDefinition(
                "platinum", Decimal(5000), referrals=4, visits=8, match=draw(st.sampled_from(Match))
            ),
        ),
        basis=draw(st.sampled_from(SpendBasis)),
        referral_return_window_days=draw(st.sampled_from([0, 14])),
    )


def _purchases(draw: st.DrawFn, customer_id: str, start: datetime, most: int) -> list[CloudEvent]:
    topic: list[CloudEvent] = []
    days = sorted(draw(st.lists(st.integers(0, 500), max_size=most)))
    for n, day in enumerate(days):
        at = start + timedelta(days=day, hours=n)
        total = draw(st.sampled_from(["20", "300", "900", "1800"]))
        purchase_id = f"{customer_id}-p{n}"
        topic.append(bought(customer_id, purchase_id, total, at))
        share = draw(st.sampled_from([None, "1", "0.5"]))
        if share is not None:
            later = at + timedelta(days=draw(st.integers(0, 30)), minutes=1)
            amount = str(Decimal(total) * Decimal(share))
            topic.append(returned(customer_id, purchase_id, amount, later, f"{purchase_id}-r"))
    return topic


@st.composite
def stories(draw: st.DrawFn) -> Story:
    program = _program(draw)
    topics = [[factories.enrolment("x", at=ENROLLED_AT)], _purchases(draw, "x", ENROLLED_AT, 4)]
    for n in range(draw(st.integers(0, 5))):
        joined = ENROLLED_AT + timedelta(days=draw(st.integers(0, 300)))
        topics.append([friend(f"f{n}", at=joined)])
        topics.append(_purchases(draw, f"f{n}", joined, 2))
    as_of = ENROLLED_AT + timedelta(days=draw(st.integers(900, 1300)))  # after everything
    return Story(program, [t for t in topics if t], as_of)


def _again(event: CloudEvent) -> CloudEvent:
    return CloudEvent.model_validate(event.model_dump() | {"id": f"{event.id}-again"})


async def _delivered(story: Story, deliveries: list[CloudEvent], cuts: list[int]) -> FakeTiers:
    tiers, sink = FakeTiers(), CollectingSink()
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(deliveries)), len(deliveries)]
    for start, end in pairwise(bounds):
        if start < end:
            await consume(tiers, sink, *deliveries[start:end], program=story.program)
    await qualify(tiers, sink, story.as_of, program=story.program)
    await qualify(tiers, sink, story.as_of, program=story.program)  # run again: no change
    return tiers


def _outcome(story: Story, tiers: FakeTiers) -> tuple[str, int, int]:
    customer = tiers.customers["x"]
    mine = [a for a in tiers.activity.values() if a.customer_id == "x"]
    counted = standing(story.program, mine, story.as_of)
    tier = review_due(story.program, customer, mine, story.as_of).customer.tier
    return tier, counted.referrals, counted.visits


@settings(max_examples=120, deadline=None)
@given(story=stories(), data=st.data())
async def test_the_order_and_redelivery_of_events_never_change_the_tier(
    story: Story, data: st.DataObject
) -> None:
    in_order = sorted((e for topic in story.topics for e in topic), key=lambda e: e.time)
    expected = _outcome(story, await _delivered(story, in_order, list(range(len(in_order)))))

    # The topics' partitions interleaved anyhow, each customer's topic order kept.
    queues = [list(topic) for topic in story.topics]
    deliveries: list[CloudEvent] = []
    while any(queues):
        queue = data.draw(st.sampled_from([q for q in queues if q]), label="next from")
        deliveries.append(queue.pop(0))
    for original in data.draw(st.lists(st.sampled_from(deliveries), max_size=4), label="twice"):
        after = deliveries.index(original) + 1
        deliveries.insert(data.draw(st.integers(after, len(deliveries))), _again(original))
    cuts = data.draw(st.lists(st.integers(0, len(deliveries)), max_size=4), label="cuts")

    assert _outcome(story, await _delivered(story, deliveries, cuts)) == expected


async def _on_time(story: Story) -> tuple[CustomerTier, FakeTiers]:
    """The live service with every event applied when it happened, the reviews and the
    referrals' job run on time (at every event and every instant a referral may qualify)."""
    tiers, sink = FakeTiers(), CollectingSink()
    timeline = sorted((e for topic in story.topics for e in topic), key=lambda e: e.time)
    window = timedelta(days=story.program.referral_return_window_days)
    ticks = sorted(
        {e.time for e in timeline}
        | {e.time + window for e in timeline if e.type == events.PURCHASE_COMPLETED}
        | {story.as_of}
    )

    def review(until: datetime) -> None:
        if "x" in tiers.customers:
            mine = [a for a in tiers.activity.values() if a.customer_id == "x"]
            reviewed = review_due(story.program, tiers.customers["x"], mine, until)
            tiers.customers["x"] = reviewed.customer

    # At each instant: the reviews due, then what happened then, then the job.
    for tick in ticks:
        if tick > story.as_of:
            break
        review(tick)
        for event in (e for e in timeline if e.time == tick):
            await consume(tiers, sink, event, program=story.program)
        await qualify(tiers, sink, tick, program=story.program)
    review(story.as_of)
    return tiers.customers["x"], tiers


def _rebuilt(story: Story, live: FakeTiers) -> CustomerTier:
    """What a replay rebuilds for x from the purchases topic, with the referrals the live
    service qualified (as the replay takes them)."""
    activities: list[QualifyingActivity] = []
    refunds: dict[str, str] = {}
    for event in (e for topic in story.topics for e in topic):
        if event.subject != "x":
            continue
        if event.type == events.PURCHASE_COMPLETED:
            p = event.data_as(events.PurchaseCompleted)
            activities.append(
                QualifyingActivity(f"purchase:demo:{p.purchase_id}", "x", p.total, p.occurred_at)
            )
        elif event.type == events.PURCHASE_REFUNDED:
            r = event.data_as(events.PurchaseRefunded)
            activities.append(
                QualifyingActivity(f"refund:demo:{r.refund_id}", "x", -r.amount, r.occurred_at)
            )
            refunds[f"refund:demo:{r.refund_id}"] = f"purchase:demo:{r.purchase_id}"
    referrals = [
        replace_visits(a)
        for a in live.activity.values()
        if a.customer_id == "x" and a.activity_id.startswith("referral:")
    ]
    rebuilt = rebuild_customer(
        story.program,
        "x",
        enrolled_at=ENROLLED_AT,
        activities=attribute_refunds([*activities, *referrals], refunds),
        refunds=refunds,
        as_of=story.as_of,
    )
    assert rebuilt is not None
    return rebuilt.customer


def replace_visits(activity: QualifyingActivity) -> QualifyingActivity:
    return activity  # a referral carries its count itself, as the replay reads it


@settings(max_examples=100, deadline=None)
@given(story=stories())
async def test_a_replay_rebuilds_what_the_live_service_holds_by_every_route(
    story: Story,
) -> None:
    live, tiers = await _on_time(story)
    assert _rebuilt(story, tiers) == live


# -- the worked example of docs/tiers.md ("Climbing by referrals") ---------------------------

EXAMPLE = Program(
    tiers=(
        TierDefinition("bronze", Decimal(0)),
        TierDefinition("silver", Decimal(500), referrals=2),
        TierDefinition("gold", Decimal(2000), referrals=4),
        TierDefinition("platinum", Decimal(5000), referrals=10, match=Match.ALL),
    ),
    referral_return_window_days=14,
)


def day(month: int, date: int, year: int = 2026) -> datetime:
    return datetime(year, month, date, 14, tzinfo=UTC)


async def test_the_worked_example_of_a_member_who_climbs_by_referrals() -> None:
    tiers, sink = FakeTiers(), CollectingSink()

    async def on(at: datetime, *happened: CloudEvent) -> str:
        await consume(tiers, sink, *happened, program=EXAMPLE)
        await qualify(tiers, sink, at, program=EXAMPLE)
        return tiers.customers["bea"].tier

    assert await on(day(1, 10), factories.enrolment("bea", at=day(1, 10))) == "bronze"
    assert await on(day(2, 1), bought("bea", "b1", "300", day(2, 1))) == "bronze"
    await on(day(2, 10), friend("carlo", day(2, 10), referrer="bea"))
    assert await on(day(2, 12), bought("carlo", "c1", "40", day(2, 12))) == "bronze"
    assert tiers.referrals["carlo"].status == "pending"
    await on(day(2, 26))
    assert tiers.referrals["carlo"].status == "qualified"
    await on(day(3, 1), friend("dana", day(3, 1), referrer="bea"))
    await on(day(3, 2), bought("dana", "d1", "25", day(3, 2)))
    await on(day(3, 5), returned("dana", "d1", "25", day(3, 5), "d1-r"))
    await on(day(3, 16))
    assert tiers.referrals["dana"].status == "disqualified"
    await on(day(3, 20), friend("eli", day(3, 20), referrer="bea"))
    await on(day(3, 21), bought("eli", "e1", "60", day(3, 21)))
    assert await on(day(4, 4)) == "silver"
    assert tiers.customers["bea"].review_at == day(4, 4, 2027)
    await on(day(4, 1), friend("fay", day(4, 1), referrer="bea"))
    await on(day(4, 3), bought("fay", "f1", "80", day(4, 3)))
    assert await on(day(4, 17)) == "silver"
    await on(day(4, 30), friend("gus", day(4, 30), referrer="bea"))
    await on(day(5, 2), bought("gus", "g1", "35", day(5, 2)))
    assert await on(day(5, 16)) == "gold"
    bea = tiers.customers["bea"]
    assert (bea.since, bea.review_at) == (day(5, 16), day(5, 16, 2027))

    mine = [a for a in tiers.activity.values() if a.customer_id == "bea"]
    now = standing(EXAMPLE, mine, day(5, 20))
    assert (now.spend, now.referrals, now.visits) == (Decimal(300), 4, 1)
    ahead = progress(EXAMPLE, "gold", now)
    assert (ahead.amount_to_next_tier, ahead.referrals_to_next_tier) == (Decimal(4700), 6)
    keep = to_keep_tier(EXAMPLE, bea, mine)
    assert (keep.amount, keep.referrals) == (Decimal(2000), 4)
    ups = [(c.to_tier, c.reason, c.effective_at) for c in tier_changes(sink)]
    assert ups == [
        ("silver", "qualifying_referrals", day(4, 4)),
        ("gold", "qualifying_referrals", day(5, 16)),
    ]
    [_, gold] = tier_changes(sink)
    assert (gold.next_tier, gold.amount_to_next_tier, gold.referrals_to_next_tier) == (
        "platinum",
        Decimal(4700),
        6,
    )


async def test_a_warning_of_a_program_with_routes_names_each_route() -> None:
    since = day(5, 16)
    reviews = FakeReviews(since, EXAMPLE)
    reviews.add("gold", "bea", ("300", since + timedelta(days=10)))
    reviews.activity.append(
        QualifyingActivity(
            "referral:carlo", "bea", Decimal(0), since + timedelta(days=20), referrals=1
        )
    )
    sink = CollectingSink()
    review_at = EXAMPLE.review_at(since)
    context = JobContext(tiers=reviews, sink=sink, program=EXAMPLE, now=review_at)
    done = await warn_downgrades(review_at - timedelta(days=10), "", 10, context)
    assert done.events == 1
    [warning] = [
        events.TierDowngradeWarning.model_validate(e.data)
        for _, _, e in sink.events
        if e.type == events.TIER_DOWNGRADE_WARNING
    ]
    assert (warning.amount_to_keep_tier, warning.keep_by_spend) == (Decimal(1700), True)
    assert (warning.referrals_to_keep_tier, warning.visits_to_keep_tier) == (3, None)
    assert warning.keep_match == "any"
