"""What tiers does with a batch of the events it consumes: plain functions, side effects
injected.

A batch is applied in three steps: the state it needs is loaded for all its customers at
once, the events are walked in order applying the rules in memory (so a customer's later
purchase sees the spend and tier an earlier one of the same batch left), and what changed is
written with a few multi-row statements. The result is the same as applying the events one
at a time, and a batch (or any part of it) applied again changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

from services.tiers.domain.buckets import ActivityBucket, Window, summarise, window, year_zone
from services.tiers.domain.imports import imported_activity, imported_change
from services.tiers.domain.model import (
    CustomerTier,
    DowngradeWarning,
    Program,
    Progress,
    QualifyingActivity,
    SpendHistory,
    Standing,
    TierChange,
    after_change,
    downgrade_warning,
    enrol,
    new_customer,
    progress,
    purchase_activity_id,
    referral_activity,
    referral_kept,
    refund_activity_id,
    review_due,
    takes_visit_back,
)
from services.tiers.ports import (
    ConsumerRepository,
    CountedActivity,
    JobRepository,
    RefundedPurchase,
)
from shared.messaging import events
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import EventSink, emit

SOURCE = "tiers"

# customer.updated enrols too: the customers topic is compacted, so a consumer reading it
# afresh (a new group, a replay, one lagging past a segment roll) may find only a customer's
# latest profile and never their enrolment. The profile alone must be enough.
HANDLED_TYPES = frozenset(
    {
        events.CUSTOMER_ENROLLED,
        events.CUSTOMER_UPDATED,
        events.PURCHASE_COMPLETED,
        events.PURCHASE_REFUNDED,
        events.POINTS_IMPORTED,
    }
)


@dataclass(frozen=True)
class Context:
    tiers: ConsumerRepository
    sink: EventSink
    program: Program
    now: datetime


@dataclass(frozen=True)
class _Enrolment:
    cause: CloudEvent
    customer: CustomerTier  # as the enrolment, or the latest profile, would add them
    referred_by: str | None = None  # the referrer, when another member


@dataclass(frozen=True)
class _Purchase:
    cause: CloudEvent
    activity: QualifyingActivity


@dataclass(frozen=True)
class _Refund:
    cause: CloudEvent
    activity: QualifyingActivity
    purchase_activity_id: str  # the refunded purchase's, to count the refund in its year


@dataclass(frozen=True)
class _Import:
    cause: CloudEvent
    activity: QualifyingActivity  # the opening tier, held from the activity's instant


_Step = _Enrolment | _Purchase | _Refund | _Import


async def apply_batch(batch: Sequence[CloudEvent], ctx: Context) -> None:
    steps = _read(batch, ctx.program)
    if not steps:
        return
    state = await _load(steps, ctx)
    walked = _walk(steps, state, ctx.program)
    await _write(walked, ctx)


@dataclass(frozen=True)
class _Loaded:
    """What a batch needs before it is walked, loaded for all its customers at once."""

    customers: dict[str, CustomerTier]  # locked
    attributed: dict[str, QualifyingActivity]  # the batch's activity, refunds dated
    recorded: set[str]  # the activity ids new to tiers
    histories: dict[str, SpendHistory]  # per customer with a new purchase: the spend before


@dataclass
class _Walked:
    changed: dict[str, CustomerTier] = field(default_factory=dict)
    # Each change, its cause, and the progress to the tier above it announces (routes only).
    changes: list[tuple[TierChange, CloudEvent, Progress | None]] = field(default_factory=list)


async def _load(steps: Sequence[_Step], ctx: Context) -> _Loaded:
    first_seen = _first_seen(steps, ctx.program)
    await ctx.tiers.add_customers(list(first_seen.values()))
    customers = await ctx.tiers.lock_customers(first_seen)
    # Keyed by the purchase or refund, not the event: one counts once whichever carried it.
    activities = await _attributed(
        _unique(step.activity for step in steps if not isinstance(step, _Enrolment)), steps, ctx
    )
    # The buckets as they were before this batch (recording its activity adds it to them).
    looked_at = _looked_at(steps, customers, ctx.program)
    buckets = await read_buckets(ctx.tiers, ctx.program, looked_at)
    # Recorded before the history is read, purchases under their customer's lock, so
    # RETURNING tells for sure which ones are new.
    recorded = await ctx.tiers.record_activities(activities)
    referred_by = _referred_by(steps)
    if referred_by:
        # After the activity: a referred member's purchases of this batch are recorded.
        await ctx.tiers.add_referrals(referred_by)
    judged = _judged(steps, recorded)
    loaded = await counted_activity(
        ctx.tiers,
        ctx.program,
        {c: w for c, w in looked_at.items() if c in judged},
        buckets,
        recorded,
    )
    # What was there before this batch: the batch's own activity is added back in order.
    histories = {
        customer_id: SpendHistory(ctx.program, found) for customer_id, found in loaded.items()
    }
    return _Loaded(customers, {a.activity_id: a for a in activities}, recorded, histories)


@dataclass(frozen=True)
class LookedAt:
    """What a member's standing is looked at for: as of which instants, counting the activity
    since which one, and, when given, as of every activity after that instant too."""

    since: datetime
    at: frozenset[datetime]
    checkpoints_after: datetime | None = None

    def window(self, program: Program) -> Window:
        return window(program, self.since, self.at, self.checkpoints_after)


async def read_buckets(
    repository: CountedActivity, program: Program, looked_at: Mapping[str, LookedAt]
) -> Mapping[str, Sequence[ActivityBucket]]:
    """The members' buckets for their windows, as few rows as exactness allows."""
    if not looked_at:
        return {}
    windows = {c: w.window(program) for c, w in looked_at.items()}
    return await repository.buckets_since(windows, year_zone(program))


async def counted_activity(
    repository: CountedActivity,
    program: Program,
    looked_at: Mapping[str, LookedAt],
    buckets: Mapping[str, Sequence[ActivityBucket]] | None = None,
    leave_out: Collection[str] = frozenset(),
) -> dict[str, list[QualifyingActivity]]:
    """Each member's activity since their `since`, exact for the standing as of their
    instants: the day buckets no instant cuts, each as one activity, and the activity of the
    others (`leave_out`: activity ids recorded after `buckets` were read). Two statements
    at most, whatever the members' histories: `buckets` (read now when not given) and the
    activity of the cut ones."""
    if not looked_at:
        return {}
    if buckets is None:
        buckets = await read_buckets(repository, program, looked_at)
    summaries = {
        customer_id: summarise(program, buckets.get(customer_id, ()), w.window(program))
        for customer_id, w in looked_at.items()
    }
    to_read = [key for summary in summaries.values() for key in summary.to_read]
    read = await repository.bucket_activities(to_read) if to_read else {}
    return {
        customer_id: [
            *summary.activities,
            *(
                a
                for a in read.get(customer_id, ())
                if a.occurred_at >= looked_at[customer_id].since and a.activity_id not in leave_out
            ),
        ]
        for customer_id, summary in summaries.items()
    }


def _looked_at(
    steps: Sequence[_Step], customers: Mapping[str, CustomerTier], program: Program
) -> dict[str, LookedAt]:
    """Per customer with a purchase or an import in the batch, the instants the walk may look
    at their standing as of: each of their activity of the batch (a purchase judged, a
    refund a later purchase's checkpoint), their enrolment and the start of their tier (an
    upgrade takes effect at the later of it and the purchase); counting from the window of
    the earliest activity."""
    buying = {step.activity.customer_id for step in steps if isinstance(step, _Purchase | _Import)}
    instants: dict[str, set[datetime]] = {}
    earliest: dict[str, datetime] = {}  # the earliest purchase or import
    for step in steps:
        if isinstance(step, _Enrolment):
            customer_id, instant = step.customer.customer_id, step.customer.since
        else:
            customer_id, instant = step.activity.customer_id, step.activity.occurred_at
        if customer_id not in buying:
            continue
        instants.setdefault(customer_id, set()).add(instant)
        if isinstance(step, _Purchase | _Import):
            earliest[customer_id] = min(earliest.get(customer_id, instant), instant)
    looked_at: dict[str, LookedAt] = {}
    for customer_id, found in instants.items():
        known = customers.get(customer_id)
        first = earliest[customer_id]
        looked_at[customer_id] = LookedAt(
            since=program.earliest_counted(first),
            at=frozenset(found | ({known.since} if known else set())),
            checkpoints_after=first,
        )
    return looked_at


def _referred_by(steps: Sequence[_Step]) -> dict[str, str]:
    """Referred member -> referrer, from the batch's profiles (the first that names one)."""
    found: dict[str, str] = {}
    for step in steps:
        if isinstance(step, _Enrolment) and step.referred_by is not None:
            found.setdefault(step.customer.customer_id, step.referred_by)
    return found


def _first_seen(steps: Sequence[_Step], program: Program) -> dict[str, CustomerTier]:
    """Each customer as the first of their events that enrols, buys or is imported would add
    them (a purchase or an import may come before the enrolment: they travel on different
    topics)."""
    first_seen: dict[str, CustomerTier] = {}
    for step in steps:
        if isinstance(step, _Enrolment):
            first_seen.setdefault(step.customer.customer_id, step.customer)
        elif isinstance(step, _Purchase | _Import) and step.activity.customer_id not in first_seen:
            activity = step.activity
            first_seen[activity.customer_id] = new_customer(
                program, activity.customer_id, since=activity.occurred_at
            )
    return first_seen


def _judged(steps: Sequence[_Step], recorded: set[str]) -> set[str]:
    """The customers with a purchase or an import new to tiers: their history is walked."""
    return {
        step.activity.customer_id
        for step in steps
        if isinstance(step, _Purchase | _Import) and step.activity.activity_id in recorded
    }


def _walk(steps: Sequence[_Step], state: _Loaded, program: Program) -> _Walked:
    """The batch walked in order, applying the rules in memory."""
    walked = _Walked()
    counted: set[str] = set()
    for step in steps:
        if isinstance(step, _Enrolment):
            _enrol(step, state, walked, program)
            continue
        activity = state.attributed.get(step.activity.activity_id, step.activity)
        if activity.activity_id not in state.recorded or activity.activity_id in counted:
            continue  # counted already, before this batch or earlier in it
        counted.add(activity.activity_id)
        history = state.histories.get(activity.customer_id)
        if history is None:
            continue  # a refund of a customer with no new purchase in this batch: recorded only
        history.record(activity)
        if isinstance(step, _Refund):
            # A refund lowers qualifying spend, but a tier is lowered at review alone.
            continue
        customer = walked.changed.get(activity.customer_id) or state.customers[activity.customer_id]
        if isinstance(step, _Import):
            # The opening tier, held from its `since`: up only, never lowering a tier.
            change = imported_change(program, customer, activity)
        else:
            change = history.upgrade_for(customer, arrived_at=activity.occurred_at)
        if change is not None:
            walked.changed[activity.customer_id] = after_change(customer, change)
            ahead = _progress_after(program, change, history.standing_as_of)
            walked.changes.append((change, step.cause, ahead))
    return walked


def _enrol(step: _Enrolment, state: _Loaded, walked: _Walked, program: Program) -> None:
    customer_id = step.customer.customer_id
    customer = walked.changed.get(customer_id) or state.customers[customer_id]
    enrolled_at = step.customer.enrolled_at
    if customer.enrolled_at is None and enrolled_at is not None:
        walked.changed[customer_id] = enrol(program, customer, enrolled_at)


async def _write(walked: _Walked, ctx: Context) -> None:
    await ctx.tiers.save_customers(list(walked.changed.values()))
    await ctx.tiers.append_history([change for change, _, _ in walked.changes])
    for change, cause, ahead in walked.changes:
        await _emit_change(change, cause.id, ctx.sink, ctx.now, ahead)


def _read(batch: Sequence[CloudEvent], program: Program) -> list[_Step]:
    """The batch's events as the steps they are for tiers; a purchase in a currency other
    than the program's is refused (the consumer sets that event alone aside)."""
    steps: list[_Step] = []
    for event in batch:
        if event.type == events.PURCHASE_COMPLETED:
            purchase = event.data_as(events.PurchaseCompleted)
            if purchase.currency != program.currency:
                raise ValueError(
                    f"purchase {purchase.purchase_id} is in {purchase.currency}, "
                    f"the program in {program.currency}"
                )
            activity = QualifyingActivity(
                activity_id=purchase_activity_id(purchase.partner_id, purchase.purchase_id),
                customer_id=purchase.customer_id,
                amount=purchase.total,
                occurred_at=purchase.occurred_at,
                visits=1,
            )
            steps.append(_Purchase(event, activity))
        elif event.type == events.PURCHASE_REFUNDED:
            refund = event.data_as(events.PurchaseRefunded)
            bought = purchase_activity_id(refund.partner_id, refund.purchase_id)
            activity = QualifyingActivity(
                activity_id=refund_activity_id(refund.partner_id, refund.refund_id),
                customer_id=refund.customer_id,
                amount=-refund.amount,
                occurred_at=refund.occurred_at,
                refund_of=bought,
            )
            steps.append(_Refund(event, activity, bought))
        elif event.type in (events.CUSTOMER_ENROLLED, events.CUSTOMER_UPDATED):
            # Either profile carries the enrolment's instant; a known customer's is kept.
            enrolled = event.data_as(
                events.CustomerEnrolled
                if event.type == events.CUSTOMER_ENROLLED
                else events.CustomerUpdated
            )
            customer = new_customer(
                program,
                enrolled.customer_id,
                since=enrolled.enrolled_at,
                enrolled_at=enrolled.enrolled_at,
            )
            referrer = enrolled.referred_by
            if referrer == enrolled.customer_id:
                referrer = None  # nobody refers themselves
            steps.append(_Enrolment(event, customer, referrer))
        elif event.type == events.POINTS_IMPORTED:
            steps.extend(_read_import(event, program))
    return steps


def _read_import(event: CloudEvent, program: Program) -> list[_Import]:
    """An import's opening tier, when it names one above the entry tier (else nothing)."""
    imported = event.data_as(events.PointsImported)
    activity = imported_activity(
        program,
        imported.customer_id,
        tier=imported.tier,
        tier_since=imported.tier_since,
        imported_at=imported.imported_at,
    )
    return [] if activity is None else [_Import(event, activity)]


def _unique(activities: Iterable[QualifyingActivity]) -> list[QualifyingActivity]:
    """The first of each activity id: the one that counts when a batch carries it twice."""
    first: dict[str, QualifyingActivity] = {}
    for activity in activities:
        first.setdefault(activity.activity_id, activity)
    return list(first.values())


async def _attributed(
    activities: list[QualifyingActivity], steps: Sequence[_Step], ctx: Context
) -> list[QualifyingActivity]:
    """The activities with each refund dated to its purchase's instant, when the purchase is
    known (recorded before, or earlier in the batch); a refund of an unknown purchase keeps
    its own instant."""
    refunded = {
        step.activity.activity_id: step.purchase_activity_id
        for step in steps
        if isinstance(step, _Refund)
    }
    if not refunded:
        return activities
    bought_at = {
        step.activity.activity_id: step.activity.occurred_at
        for step in steps
        if isinstance(step, _Purchase)
    }
    missing = {p for p in refunded.values() if p not in bought_at}
    bought_at.update(await ctx.tiers.purchase_times(missing) if missing else {})
    taken_back = _visits_taken_back(
        activities, await ctx.tiers.refunds_of(set(refunded.values())), steps
    )
    return [
        replace(
            a,
            attributed_at=bought_at.get(refunded[a.activity_id]),
            visits=-1 if a.activity_id in taken_back else 0,
        )
        if a.activity_id in refunded
        else a
        for a in activities
    ]


def _visits_taken_back(
    activities: Sequence[QualifyingActivity],
    recorded: dict[str, RefundedPurchase],
    steps: Sequence[_Step],
) -> set[str]:
    """The refunds, new to tiers, that each refund their purchase wholly: the purchase's
    visit goes with them. Refunds already recorded are counted as they were (a redelivery
    changes nothing); a refund of a purchase tiers does not know takes no visit back."""
    totals = {
        step.activity.activity_id: step.activity.amount
        for step in steps
        if isinstance(step, _Purchase)
    }
    refunded_so_far: dict[str, Decimal] = {}
    for purchase_id, known in recorded.items():
        totals[purchase_id] = known.total
        refunded_so_far[purchase_id] = sum(known.refunds.values(), start=Decimal(0))
    already = {refund_id for known in recorded.values() for refund_id in known.refunds}
    taken_back: set[str] = set()
    for a in activities:
        refund_of = a.refund_of
        if refund_of is None or a.activity_id in already or refund_of not in totals:
            continue
        purchase_id = refund_of
        before = refunded_so_far.get(purchase_id, Decimal(0))
        if takes_visit_back(totals[purchase_id], before, -a.amount):
            taken_back.add(a.activity_id)
        refunded_so_far[purchase_id] = before - a.amount
    return taken_back


@dataclass(frozen=True)
class JobContext:
    tiers: JobRepository
    sink: EventSink
    program: Program
    now: datetime


@dataclass(frozen=True)
class ChunkDone:
    last_customer_id: str | None  # where the next chunk starts; None when none was left
    customers: int  # reviewed, or looked at for a warning
    events: int  # tier changes, or warnings


async def review_tiers(as_of: datetime, after: str, limit: int, ctx: JobContext) -> ChunkDone:
    """One chunk of the customers whose review is due by `as_of`: each review judged on the
    spend as of its own date, the next review set, a downgrade recorded and announced."""
    due = await ctx.tiers.lock_due_for_review(as_of, after=after, limit=limit)
    if not due:
        return ChunkDone(None, 0, 0)
    program = ctx.program
    loaded = await counted_activity(
        ctx.tiers,
        program,
        {
            c.customer_id: LookedAt(
                program.earliest_counted(c.review_at), _review_dates(program, c, as_of)
            )
            for c in due
        },
    )
    reviewed: list[CustomerTier] = []
    changes: list[TierChange] = []
    for customer in due:
        outcome = review_due(program, customer, loaded.get(customer.customer_id, []), as_of)
        reviewed.append(outcome.customer)
        changes.extend(outcome.changes)
    await ctx.tiers.save_customers(reviewed)
    await ctx.tiers.append_history(changes)
    for change in changes:
        cause = _review_cause(change.customer_id, change.effective_at)
        await _emit_change(change, cause, ctx.sink, ctx.now)
    return ChunkDone(due[-1].customer_id, len(due), len(changes))


async def warn_downgrades(as_of: datetime, after: str, limit: int, ctx: JobContext) -> ChunkDone:
    """One chunk of the customers whose review comes within the warning period and who were
    not warned about it yet: a warning to each whose known spend would not keep the tier."""
    program = ctx.program
    warn_until = as_of + timedelta(days=program.downgrade_warning_days)
    due = await ctx.tiers.lock_due_for_warning(as_of, warn_until, after=after, limit=limit)
    if not due:
        return ChunkDone(None, 0, 0)
    loaded = await counted_activity(
        ctx.tiers,
        program,
        {
            c.customer_id: LookedAt(program.earliest_counted(c.review_at), frozenset({c.review_at}))
            for c in due
        },
    )
    warnings = [
        warning
        for customer in due
        if (
            warning := downgrade_warning(
                program, customer, loaded.get(customer.customer_id, []), as_of
            )
        )
        is not None
    ]
    await ctx.tiers.record_warnings(warnings, ctx.now)
    for warning in warnings:
        await _emit_warning(warning, ctx)
    return ChunkDone(due[-1].customer_id, len(due), len(warnings))


async def qualify_referrals(as_of: datetime, after: str, limit: int, ctx: JobContext) -> ChunkDone:
    """One chunk of the pending referrals whose referred member's first purchase was made
    the return window or more before `as_of`: each one kept (not wholly refunded within the
    window) becomes a referral activity of the referrer, counted from the window's end, and
    the referrer goes up at once if that reaches a tier; a wholly refunded one is dropped.
    Run again, it finds nothing left to decide."""
    program = ctx.program
    window = program.referral_return_window_days
    candidates = await ctx.tiers.due_referrals(as_of, window, after=after, limit=limit)
    if not candidates:
        return ChunkDone(None, 0, 0)
    # The customers first, in id order, like a consumer batch: it locks a referred member
    # before touching their referral, so the two never wait on each other in a cycle.
    customers = await ctx.tiers.lock_customers({*candidates, *candidates.values()})
    # A referrer tiers does not know yet (their enrolment not read yet: another partition)
    # is left pending: the referral is decided, and they go up, once they are known.
    known = [referred for referred, referrer in candidates.items() if referrer in customers]
    due = await ctx.tiers.lock_referrals(known, as_of, window)
    kept = [d for d in due if referral_kept(d.purchase_total, d.refunded_in_window)]
    referrals = [
        referral_activity(program, d.referrer_id, d.referred_id, d.first_purchase_at) for d in kept
    ]
    # The referrers' standing as recorded before these referrals (recording adds them).
    looked_at = _referrers_looked_at(referrals, customers, program)
    buckets = await read_buckets(ctx.tiers, ctx.program, looked_at)
    recorded = await ctx.tiers.record_activities(referrals)
    await ctx.tiers.decide_referrals(
        [d.referred_id for d in kept],
        [d.referred_id for d in due if not referral_kept(d.purchase_total, d.refunded_in_window)],
        ctx.now,
    )
    new = [a for a in referrals if a.activity_id in recorded]
    loaded = await counted_activity(
        ctx.tiers,
        program,
        {a.customer_id: looked_at[a.customer_id] for a in new},
        buckets,
        recorded,
    )
    changes = await _upgrade_referrers(new, loaded, customers, ctx)
    return ChunkDone(max(candidates), len(candidates), len(changes))


def _referrers_looked_at(
    referrals: Sequence[QualifyingActivity], customers: Mapping[str, CustomerTier], program: Program
) -> dict[str, LookedAt]:
    """Each referrer judged as of each referral's instant (and as of their tier's start), and
    as of every activity after the earliest, as a late purchase is."""
    instants: dict[str, set[datetime]] = {}
    for referral in referrals:
        instants.setdefault(referral.customer_id, set()).add(referral.occurred_at)
    looked_at: dict[str, LookedAt] = {}
    for referrer, found in instants.items():
        first = min(found)
        looked_at[referrer] = LookedAt(
            program.earliest_counted(first),
            frozenset({*found, customers[referrer].since}),
            checkpoints_after=first,
        )
    return looked_at


async def _upgrade_referrers(
    referrals: Sequence[QualifyingActivity],
    loaded: Mapping[str, Sequence[QualifyingActivity]],
    customers: dict[str, CustomerTier],
    ctx: JobContext,
) -> list[TierChange]:
    """Each referrer judged at each new referral's instant, on what was recorded before it
    (as the consumer judges a purchase); upgrades saved and announced."""
    if not referrals:
        return []
    program = ctx.program
    mine: dict[str, list[QualifyingActivity]] = {}
    for referral in sorted(referrals, key=lambda a: (a.occurred_at, a.activity_id)):
        mine.setdefault(referral.customer_id, []).append(referral)
    changed: dict[str, CustomerTier] = {}
    changes: list[tuple[TierChange, str, Progress | None]] = []
    for referrer, listed in sorted(mine.items()):
        history = SpendHistory(program, loaded.get(referrer, ()))
        customer = customers[referrer]
        for referral in listed:
            history.record(referral)
            change = history.upgrade_for(customer, arrived_at=referral.occurred_at)
            if change is not None:
                customer = changed[referrer] = after_change(customer, change)
                ahead = _progress_after(program, change, history.standing_as_of)
                changes.append((change, f"tier-referral/{referral.activity_id}", ahead))
    await ctx.tiers.save_customers(list(changed.values()))
    await ctx.tiers.append_history([change for change, _, _ in changes])
    for change, cause, ahead in changes:
        await _emit_change(change, cause, ctx.sink, ctx.now, ahead)
    return [change for change, _, _ in changes]


def _review_dates(program: Program, customer: CustomerTier, as_of: datetime) -> frozenset[datetime]:
    """The dates `review_due` judges the customer's standing on: their review, and each one a
    review period after it up to `as_of` (whether the tier is kept or lowered)."""
    dates = {customer.review_at}
    review_at = customer.review_at
    while review_at <= as_of:
        review_at = program.review_at(review_at)
        dates.add(review_at)
    return frozenset(dates)


def _review_cause(customer_id: str, review_at: datetime) -> str:
    # A review is one per customer and date: a rerun derives the very same event ids.
    return f"tier-review/{customer_id}/{review_at.isoformat()}"


async def _emit_warning(warning: DowngradeWarning, ctx: JobContext) -> None:
    payload = events.TierDowngradeWarning(
        customer_id=warning.customer_id,
        tier=warning.tier,
        would_become=warning.would_become,
        review_at=warning.review_at,
        amount_to_keep_tier=warning.amount_to_keep_tier,
    )
    if ctx.program.counts_routes:
        # Each route that would keep the tier; a spend-only program's warning is unchanged.
        payload = payload.model_copy(
            update={
                "keep_by_spend": warning.spend_route,
                "referrals_to_keep_tier": warning.referrals_to_keep_tier,
                "visits_to_keep_tier": warning.visits_to_keep_tier,
                "keep_match": warning.match.value,
            }
        )
    await emit(
        ctx.sink,
        payload,
        source=SOURCE,
        customer_id=warning.customer_id,
        time=ctx.now,
        cause_id=_review_cause(warning.customer_id, warning.review_at),
        purpose="downgrade-warning",
    )


async def announce_override(change: TierChange, sink: EventSink, now: datetime) -> None:
    """A staff override's tier.changed, with the staff's reason; one override per customer
    and instant, so the instant names the cause."""
    cause = f"tier-override/{change.customer_id}/{change.effective_at.isoformat()}"
    await _emit_change(change, cause, sink, now)


async def announce_replay_change(
    change: TierChange, replay_id: str, sink: EventSink, now: datetime
) -> None:
    """The tier.changed of a replay switch: one per replay and customer at most."""
    await _emit_change(change, f"tier-replay/{replay_id}/{change.customer_id}", sink, now)


def _progress_after(
    program: Program, change: TierChange, standing_as_of: Callable[[datetime], Standing]
) -> Progress | None:
    """What an upgrade announces of the way to the tier above it, by each of its routes;
    nothing under a program whose tiers are reached by spend alone (its tier.changed stays
    what it was)."""
    if not program.counts_routes:
        return None
    return progress(program, change.to_tier, standing_as_of(change.effective_at))


async def _emit_change(
    change: TierChange,
    cause_id: str,
    sink: EventSink,
    now: datetime,
    ahead: Progress | None = None,
) -> None:
    changed = events.TierChanged(
        customer_id=change.customer_id,
        from_tier=change.from_tier,
        to_tier=change.to_tier,
        direction=change.direction.value,
        reason=change.reason,
        effective_at=change.effective_at,
        review_at=change.review_at,
    )
    if ahead is not None and ahead.next_tier is not None:
        changed = changed.model_copy(
            update={
                "next_tier": ahead.next_tier,
                "amount_to_next_tier": ahead.amount_to_next_tier,
                "referrals_to_next_tier": ahead.referrals_to_next_tier,
                "visits_to_next_tier": ahead.visits_to_next_tier,
                "next_tier_match": ahead.next_tier_match.value if ahead.next_tier_match else None,
            }
        )
    await emit(
        sink,
        changed,
        source=SOURCE,
        customer_id=change.customer_id,
        time=now,
        cause_id=cause_id,
        purpose="tier-changed",
    )
