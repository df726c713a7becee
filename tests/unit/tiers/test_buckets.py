"""Qualifying activity summed per member and day (issue 24): a decision read from the day
buckets is the decision the activity itself gives, to the cent, whatever the dates (across a
window's or a calendar year's boundary, reported late, a refund dated to its purchase),
whatever the program, and however the events are cut into batches."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from services.tiers.domain.buckets import (
    ActivityBucket,
    BucketKey,
    Window,
    bucket_key,
    buckets_of,
    merged,
    summarise,
    window,
    year_zone,
)
from services.tiers.domain.model import (
    CustomerTier,
    DowngradePolicy,
    Match,
    Program,
    QualifyingActivity,
    SpendBasis,
    TierDefinition,
    standing,
    upgrade_for,
)
from services.tiers.handlers import (
    Context,
    JobContext,
    apply_batch,
    qualify_referrals,
    review_tiers,
    warn_downgrades,
)
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import CollectingSink
from tests.support import factories
from tests.support.fakes.tiers import FakeTiers

# Late on 30 December: a day's activity, and a window, easily straddle a year's start (in UTC,
# Helsinki or New York).
START = datetime(2025, 12, 30, 21, tzinfo=UTC)
HOURS = [0, 1, 2, 9, 21, 22, 23]  # a few hours, so that instants of a day meet and repeat
AMOUNTS = [Decimal(a) for a in ("0.01", "120", "250.50", "480", "900", "1600", "3100")]


def _instant(day: int, hour: int, minute: int = 0) -> datetime:
    return START + timedelta(days=day, hours=hour, minutes=minute)


# Days close together (activity sharing a day, windows of a day or two, a year's start) and a
# year apart (a 365-day window's start cutting a day).
days = st.one_of(st.integers(0, 3), st.integers(0, 40), st.integers(362, 368), st.integers(0, 800))
instants = st.builds(_instant, days, st.sampled_from(HOURS), st.sampled_from([0, 0, 30]))

programs = st.builds(
    Program,
    basis=st.sampled_from(SpendBasis),
    downgrade_policy=st.sampled_from(DowngradePolicy),
    time_zone=st.sampled_from(["UTC", "Europe/Helsinki", "America/New_York"]),
    qualifying_window_days=st.sampled_from([1, 2, 30, 365]),
    referral_return_window_days=st.sampled_from([0, 14]),
    tiers=st.sampled_from(
        [
            Program().tiers,
            (
                TierDefinition("bronze", Decimal(0)),
                TierDefinition("silver", Decimal(500), referrals=1, visits=3),
                TierDefinition("gold", Decimal(2000), visits=5),
                TierDefinition("platinum", Decimal(5000), referrals=3, match=Match.ALL),
            ),
        ]
    ),
)


@st.composite
def histories(draw: st.DrawFn) -> list[QualifyingActivity]:
    """One member's activity: purchases, refunds (dated to their purchase, or not), an
    import, referrals."""
    activity: list[QualifyingActivity] = []
    purchases: list[QualifyingActivity] = []
    for n in range(draw(st.integers(0, 14))):
        kind = draw(st.sampled_from(["purchase", "purchase", "refund", "referral", "import"]))
        at = draw(instants)
        if kind == "purchase" or (kind == "refund" and not purchases):
            bought = QualifyingActivity(f"p{n}", "c1", draw(st.sampled_from(AMOUNTS)), at, visits=1)
            purchases.append(bought)
            activity.append(bought)
        elif kind == "refund":
            of = draw(st.sampled_from(purchases))
            dated = draw(st.booleans())
            activity.append(
                QualifyingActivity(
                    f"r{n}",
                    "c1",
                    -of.amount / draw(st.sampled_from([1, 2, 4])),
                    at,
                    attributed_at=of.occurred_at if dated else None,
                    visits=-draw(st.integers(0, 1)),
                    refund_of=of.activity_id,
                )
            )
        elif kind == "referral":
            activity.append(QualifyingActivity(f"referral:{n}", "c1", Decimal(0), at, referrals=1))
        else:
            activity.append(QualifyingActivity(f"import:{n}", "c1", Decimal(0), at, tier="gold"))
    return activity


def _summarised(
    program: Program,
    activity: Sequence[QualifyingActivity],
    since: datetime,
    at: set[datetime],
    checkpoints_after: datetime | None = None,
) -> list[QualifyingActivity]:
    """What the handlers count: the summary of what the database answers (the buckets no
    cut divides summed per stretch), with the cut buckets' activity read."""
    looked_at = window(program, since, at, checkpoints_after)
    summary = summarise(
        program, merged(buckets_of(activity), looked_at, year_zone(program)), looked_at
    )
    to_read = set(summary.to_read)
    read = [a for a in activity if bucket_key(a) in to_read and a.occurred_at >= since]
    return [*summary.activities, *read]


def _since(activity: Sequence[QualifyingActivity], since: datetime) -> list[QualifyingActivity]:
    """What the activity-based loader read: every activity from `since` on."""
    return sorted((a for a in activity if a.occurred_at >= since), key=lambda a: a.occurred_at)


def _looked_at(
    data: st.DataObject, program: Program, activity: Sequence[QualifyingActivity]
) -> datetime:
    """An instant anywhere, or close to an activity's, or a window after it (so that the
    window's start falls in its day)."""
    if not activity or data.draw(st.booleans()):
        return data.draw(instants)
    near = data.draw(st.sampled_from(activity)).occurred_at
    windows = data.draw(st.sampled_from([0, 1]))
    shift = data.draw(st.sampled_from([-30, 0, 30]))
    return near + timedelta(days=windows * program.qualifying_window_days, minutes=shift)


@settings(max_examples=400, deadline=None)
@given(program=programs, activity=histories(), data=st.data())
def test_the_standing_read_from_buckets_is_the_standing_of_the_activity(
    program: Program, activity: list[QualifyingActivity], data: st.DataObject
) -> None:
    at = {_looked_at(data, program, activity) for _ in range(data.draw(st.integers(1, 4)))}
    since = program.earliest_counted(min(at))
    counted = _summarised(program, activity, since, at)
    for instant in at:
        assert standing(program, counted, instant) == standing(
            program, _since(activity, since), instant
        )


@settings(max_examples=400, deadline=None)
@given(
    program=programs,
    activity=histories(),
    tier=st.sampled_from(["bronze", "silver", "gold"]),
    enrolled=st.booleans(),
    data=st.data(),
)
def test_an_upgrade_read_from_buckets_is_the_upgrade_the_activity_gives(
    program: Program,
    activity: list[QualifyingActivity],
    tier: str,
    enrolled: bool,
    data: st.DataObject,
) -> None:
    """A purchase judged on what was recorded before it, in order or reported late (then
    `upgrade_for` also looks as of each later activity)."""
    arrived, tier_since = _looked_at(data, program, activity), _looked_at(data, program, activity)
    customer = CustomerTier(
        "c1",
        tier,
        since=tier_since,
        review_at=program.review_at(tier_since),
        enrolled_at=tier_since if enrolled else None,
    )
    bought = QualifyingActivity("new", "c1", data.draw(st.sampled_from(AMOUNTS)), arrived, visits=1)
    since = program.earliest_counted(arrived)
    counted = _summarised(program, activity, since, {arrived, tier_since}, arrived)
    assert upgrade_for(program, customer, [*counted, bought], arrived) == upgrade_for(
        program, customer, [*_since(activity, since), bought], arrived
    )


def test_a_summary_reads_a_bounded_number_of_rows_whatever_the_history() -> None:
    """1,000 purchases of a member over a year: one bucket per day at most, and the activity
    of no day, for a purchase in order."""
    program = Program()
    days = [START + timedelta(days=n % 365, hours=n % 3) for n in range(1000)]
    activity = [QualifyingActivity(f"p{n}", "c1", Decimal(10), at) for n, at in enumerate(days)]
    now = START + timedelta(days=365, hours=5)
    looked_at = window(program, program.earliest_counted(now), {now}, now)
    buckets = buckets_of(activity)
    # The days inside the window (the first day of the history is a year and 5 hours back).
    assert len(summarise(program, buckets, looked_at).activities) == 364
    # What the database answers: one sum of them all (no cut divides the year).
    summary = summarise(program, merged(buckets, looked_at, None), looked_at)
    assert (len(summary.activities), summary.to_read) == (1, [])
    counted = standing(program, summary.activities, now)
    assert counted == standing(program, activity, now)


def test_a_day_a_window_cuts_is_read_activity_by_activity() -> None:
    """The window (as_of - 365 days, as_of] cuts the day a year back: the purchases of that
    day before the instant are out, those after it in."""
    program = Program()
    as_of = START + timedelta(days=365)
    before, after = as_of - timedelta(days=365, hours=1), as_of - timedelta(days=365, minutes=-1)
    activity = [
        QualifyingActivity("p1", "c1", Decimal(300), before),
        QualifyingActivity("p2", "c1", Decimal(400), after),
    ]
    looked_at = window(program, program.earliest_counted(as_of), {as_of})
    summary = summarise(program, buckets_of(activity), looked_at)
    assert summary.to_read == [bucket_key(activity[0])]
    assert standing(program, _summarised(program, activity, before, {as_of}), as_of).spend == 400


def test_a_day_two_calendar_years_share_is_read_activity_by_activity() -> None:
    """In Helsinki 2026 begins at 22:00 UTC on 31 December: that UTC day holds 2025 and 2026
    spend, which the calendar-year basis counts apart (the better of the two years)."""
    program = Program(basis=SpendBasis.CALENDAR_YEAR, time_zone="Europe/Helsinki")
    activity = [
        QualifyingActivity("p1", "c1", Decimal(100), datetime(2025, 12, 31, 21, tzinfo=UTC)),
        QualifyingActivity("p2", "c1", Decimal(200), datetime(2025, 12, 31, 22, 30, tzinfo=UTC)),
    ]
    as_of = datetime(2026, 3, 1, tzinfo=UTC)
    since = program.earliest_counted(as_of)
    summary = summarise(program, buckets_of(activity), window(program, since, {as_of}))
    assert summary.to_read == [bucket_key(activity[0])]
    assert standing(program, _summarised(program, activity, since, {as_of}), as_of).spend == 200


def test_a_purchase_reported_late_reads_the_activity_after_it() -> None:
    """Reported late, a purchase is judged as of each activity recorded after it too: 300 and
    300 an hour apart make silver at the first of them with the late 200, not at the bucket's
    last instant."""
    program = Program()
    day = datetime(2026, 5, 5, 10, tzinfo=UTC)
    activity = [
        QualifyingActivity("p1", "c1", Decimal(300), day),
        QualifyingActivity("p2", "c1", Decimal(-300), day + timedelta(hours=1)),
    ]
    late = QualifyingActivity("p0", "c1", Decimal(200), day - timedelta(days=3))
    customer = CustomerTier("c1", "bronze", since=late.occurred_at, review_at=day)
    since = program.earliest_counted(late.occurred_at)
    counted = _summarised(program, activity, since, {late.occurred_at}, late.occurred_at)
    change = upgrade_for(program, customer, [*counted, late], late.occurred_at)
    assert change is not None
    assert (change.to_tier, change.effective_at) == ("silver", day)


def test_a_bucket_holds_a_refund_in_its_purchase_s_day() -> None:
    bought = START
    refund = QualifyingActivity(
        "r1", "c1", Decimal(-50), START + timedelta(days=3), attributed_at=bought
    )
    [bucket] = buckets_of([refund])
    assert bucket.key == BucketKey("c1", (START + timedelta(days=3)).date(), START.date())
    assert (bucket.first_spent_at, bucket.last_spent_at) == (bought, bought)


# -- the consumer and the jobs, on buckets and on the activity itself -----------------------


class ActivityByActivity(FakeTiers):
    """The oracle: a bucket per activity. No instant ever cuts one, so the handlers count
    exactly the activity since each member's instant, as before the buckets."""

    async def buckets_since(
        self, windows: Mapping[str, Window], year_zone: str | None
    ) -> dict[str, list[ActivityBucket]]:
        return {
            customer_id: [
                bucket
                for a in self.activity.values()
                if a.customer_id == customer_id and a.occurred_at >= looked_at.since
                for bucket in buckets_of([a])
            ]
            for customer_id, looked_at in windows.items()
        }


@dataclass(frozen=True)
class Story:
    program: Program
    events: list[CloudEvent]
    cuts: list[int]
    as_of: list[datetime]  # the jobs' runs


@st.composite
def stories(draw: st.DrawFn) -> Story:
    events: list[CloudEvent] = [
        factories.enrolment("c1", at=START),
        factories.enrolment("c2", at=START, referred_by="c1"),
    ]
    if draw(st.booleans()):
        since = draw(instants)
        events.append(
            factories.points_import(
                "c1", at=since, imported_at=since, tier="silver", tier_since=since
            )
        )
    bought: list[tuple[str, str, Decimal]] = []
    for n in range(draw(st.integers(1, 12))):
        customer = draw(st.sampled_from(["c1", "c1", "c2"]))
        at = draw(instants)
        if bought and draw(st.integers(0, 3)) == 0:
            who, purchase_id, total = draw(st.sampled_from(bought))
            share = draw(st.sampled_from([Decimal(1), Decimal("0.5")]))
            amount = max((total * share).quantize(Decimal("0.01")), Decimal("0.01"))
            events.append(factories.refund(who, purchase_id, amount, at=at, refund_id=f"r{n}"))
            continue
        total = draw(st.sampled_from(AMOUNTS))
        events.append(factories.purchase(customer, total, at=at, purchase_id=f"p{n}"))
        bought.append((customer, f"p{n}", total))
    cuts = draw(st.lists(st.integers(0, len(events)), max_size=4))
    as_of = draw(st.lists(instants, max_size=3))
    return Story(draw(programs), events, cuts, sorted(as_of))


async def _play(story: Story, tiers: FakeTiers) -> tuple[object, ...]:
    sink = CollectingSink()
    context = Context(tiers=tiers, sink=sink, program=story.program, now=START)
    bounds = [0, *sorted(c for c in story.cuts if 0 < c < len(story.events)), len(story.events)]
    for begin, end in pairwise(bounds):
        if begin < end:
            await apply_batch(story.events[begin:end], context)
    jobs = JobContext(tiers=tiers, sink=sink, program=story.program, now=START)
    for as_of in story.as_of:
        for job in (qualify_referrals, warn_downgrades, review_tiers):
            after: str | None = ""
            while after is not None:
                after = (await job(as_of, after, 1, jobs)).last_customer_id
    return (
        sorted(tiers.customers.items()),
        tiers.history,
        [(topic, key, event.id, event.data) for topic, key, event in sink.events],
    )


@settings(max_examples=200, deadline=None)
@given(story=stories())
async def test_the_consumer_and_the_jobs_decide_on_buckets_what_the_activity_decides(
    story: Story,
) -> None:
    assert await _play(story, FakeTiers()) == await _play(story, ActivityByActivity())
