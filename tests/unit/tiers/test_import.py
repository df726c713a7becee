"""An imported member's opening tier (issue 23, product §11): `fedelta.points.imported.v1`
names a tier and its `since`; tiers holds it from then (reason `import`), reviews it from
then like any tier, never lowers a tier for it, and counts it once."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.tiers.adapters.replay_reader import read_records
from services.tiers.domain.imports import (
    IMPORT,
    import_activity_id,
    imported_activity,
    imported_change,
)
from services.tiers.domain.model import (
    REVIEW,
    CustomerTier,
    Direction,
    Program,
    QualifyingActivity,
    TierChange,
    TierDefinition,
    downgrade_warning,
    review_due,
)
from services.tiers.domain.rebuild import rebuild_customer
from services.tiers.handlers import Context, apply_batch
from shared.messaging import events
from shared.messaging.events import CloudEvent, derived_event_id
from shared.messaging.kafka import EVENT_TYPE_HEADER
from shared.messaging.outbox import CollectingSink
from tests.support import factories
from tests.support.fakes.tiers import FakeTiers
from tests.unit.tiers.test_replay import Record

PROGRAM = Program()
IMPORTED_AT = datetime(2026, 12, 6, 9, tzinfo=UTC)
SINCE = datetime(2026, 3, 1, 12, tzinfo=UTC)  # gold in the program the member comes from
NOW = IMPORTED_AT + timedelta(minutes=1)


def imported(
    customer_id: str = "c1",
    tier: str | None = "gold",
    since: datetime | None = SINCE,
    *,
    event_id: str | None = None,
) -> CloudEvent:
    payload = events.PointsImported(
        customer_id=customer_id,
        partner_id="demo",
        lots=[events.ImportedLot(points=120)],
        tier=tier,
        tier_since=since,
        imported_at=IMPORTED_AT,
    )
    event = factories.ingest_event(payload, customer_id, IMPORTED_AT, "demo")
    if event_id is not None:
        event = CloudEvent.model_validate(event.model_dump() | {"id": event_id})
    return event


def enrolled(customer_id: str = "c1") -> CloudEvent:
    return factories.enrolment(customer_id, at=IMPORTED_AT, imported=True, welcome=False)


async def apply(
    batch: list[CloudEvent], tiers: FakeTiers, program: Program = PROGRAM
) -> CollectingSink:
    sink = CollectingSink()
    await apply_batch(batch, Context(tiers=tiers, sink=sink, program=program, now=NOW))
    return sink


def changed(sink: CollectingSink) -> list[tuple[str, events.TierChanged]]:
    return [
        (event.id, event.data_as(events.TierChanged))
        for _, _, event in sink.events
        if event.type == events.TIER_CHANGED
    ]


# -- the rule ------------------------------------------------------------------------------


def test_an_import_is_kept_as_an_activity_of_its_own_dated_at_its_since() -> None:
    activity = imported_activity(
        PROGRAM, "c1", tier="gold", tier_since=SINCE, imported_at=IMPORTED_AT
    )
    assert activity == QualifyingActivity("import:c1", "c1", Decimal(0), SINCE, tier="gold")
    assert import_activity_id("c1") == "import:c1"


def test_an_import_without_a_since_holds_the_tier_from_the_import() -> None:
    activity = imported_activity(
        PROGRAM, "c1", tier="silver", tier_since=None, imported_at=IMPORTED_AT
    )
    assert activity is not None and activity.occurred_at == IMPORTED_AT


def test_a_since_after_the_import_is_taken_as_the_import() -> None:
    later = IMPORTED_AT + timedelta(days=3)
    activity = imported_activity(
        PROGRAM, "c1", tier="silver", tier_since=later, imported_at=IMPORTED_AT
    )
    assert activity is not None and activity.occurred_at == IMPORTED_AT


@pytest.mark.parametrize("tier", [None, "bronze"])
def test_an_import_naming_no_tier_or_the_entry_tier_is_nothing_to_tiers(
    tier: str | None,
) -> None:
    assert (
        imported_activity(PROGRAM, "c1", tier=tier, tier_since=SINCE, imported_at=IMPORTED_AT)
        is None
    )


THREE_TIERS = Program(
    tiers=(
        TierDefinition("bronze", Decimal(0)),
        TierDefinition("silver", Decimal(500)),
        TierDefinition("gold", Decimal(2000)),
    )
)


def test_a_tier_the_program_does_not_have_is_refused() -> None:
    with pytest.raises(ValueError, match="platinum"):
        imported_activity(
            THREE_TIERS, "c1", tier="platinum", tier_since=SINCE, imported_at=IMPORTED_AT
        )


def _bronze(since: datetime = IMPORTED_AT) -> CustomerTier:
    return CustomerTier("c1", "bronze", since, PROGRAM.review_at(since), since)


def _import(tier: str = "gold", at: datetime = SINCE) -> QualifyingActivity:
    return QualifyingActivity("import:c1", "c1", Decimal(0), at, tier=tier)


def test_the_import_raises_the_tier_from_its_since_reviewed_a_period_after_it() -> None:
    assert imported_change(PROGRAM, _bronze(), _import()) == TierChange(
        customer_id="c1",
        from_tier="bronze",
        to_tier="gold",
        direction=Direction.UP,
        reason=IMPORT,
        effective_at=SINCE,
        review_at=datetime(2027, 3, 1, 12, tzinfo=UTC),
    )


@pytest.mark.parametrize("held", ["gold", "platinum"])
def test_an_import_never_lowers_a_tier_nor_repeats_it(held: str) -> None:
    customer = CustomerTier("c1", held, IMPORTED_AT, PROGRAM.review_at(IMPORTED_AT))
    assert imported_change(PROGRAM, customer, _import("gold")) is None


def test_a_replay_under_a_program_without_the_tier_passes_the_import_over() -> None:
    assert imported_change(THREE_TIERS, _bronze(), _import("platinum")) is None


# -- the consumer ----------------------------------------------------------------------------


async def test_an_imported_member_holds_the_tier_from_its_since_announced_once() -> None:
    tiers = FakeTiers()
    await apply([enrolled()], tiers)
    event = imported()
    sink = await apply([event], tiers)

    customer = tiers.customers["c1"]
    review_at = datetime(2027, 3, 1, 12, tzinfo=UTC)
    assert (customer.tier, customer.since, customer.review_at) == ("gold", SINCE, review_at)
    assert customer.enrolled_at == IMPORTED_AT
    change = TierChange("c1", "bronze", "gold", Direction.UP, IMPORT, SINCE, review_at)
    assert tiers.history == [change]
    [(event_id, announced)] = changed(sink)
    assert event_id == derived_event_id(event.id, "tier-changed")
    assert (announced.from_tier, announced.to_tier, announced.direction) == (
        "bronze",
        "gold",
        "up",
    )
    assert (announced.reason, announced.effective_at, announced.review_at) == (
        "import",
        SINCE,
        review_at,
    )


@pytest.mark.parametrize("tier", [None, "bronze"])
async def test_an_import_naming_bronze_or_no_tier_changes_and_announces_nothing(
    tier: str | None,
) -> None:
    tiers = FakeTiers()
    await apply([enrolled()], tiers)
    before = tiers.customers["c1"]
    sink = await apply([imported(tier=tier)], tiers)
    assert tiers.customers["c1"] == before
    assert (tiers.history, tiers.activity, sink.events) == ([], {}, [])


async def test_an_import_without_a_since_holds_from_imported_at() -> None:
    tiers = FakeTiers()
    await apply([enrolled(), imported(tier="silver", since=None)], tiers)
    customer = tiers.customers["c1"]
    assert (customer.tier, customer.since) == ("silver", IMPORTED_AT)
    assert customer.review_at == IMPORTED_AT + timedelta(days=365)


async def test_a_higher_tier_already_held_is_not_lowered_by_the_import() -> None:
    tiers = FakeTiers()
    await apply([enrolled()], tiers)
    override = CustomerTier("c1", "platinum", NOW, NOW + timedelta(days=90), IMPORTED_AT)
    tiers.customers["c1"] = override
    sink = await apply([imported(tier="gold")], tiers)
    assert tiers.customers["c1"] == override
    assert (tiers.history, sink.events) == ([], [])
    assert "import:c1" in tiers.activity  # counted: a redelivery finds it done


@pytest.mark.parametrize("together", [True, False])
async def test_an_import_read_before_the_enrolment_gives_what_the_enrolment_first_gives(
    together: bool,
) -> None:
    in_order, reversed_order = FakeTiers(), FakeTiers()
    await apply([enrolled(), imported()], in_order)
    if together:
        await apply([imported(), enrolled()], reversed_order)
    else:
        await apply([imported()], reversed_order)
        await apply([enrolled()], reversed_order)
    assert reversed_order.customers == in_order.customers
    assert reversed_order.history == in_order.history


async def test_an_import_delivered_again_counts_once() -> None:
    tiers = FakeTiers()
    await apply([enrolled(), imported(event_id="e1")], tiers)
    # Published again (a new id): the inbox cannot tell, the activity can.
    sink = await apply([imported(event_id="e2"), imported(event_id="e3")], tiers)
    assert len(tiers.history) == 1
    assert sink.events == []


async def test_a_batch_of_imports_costs_the_same_statements_as_one() -> None:
    one, many = FakeTiers(), FakeTiers()
    await apply([enrolled("c0"), imported("c0")], one)
    batch = [e for n in range(50) for e in (enrolled(f"c{n}"), imported(f"c{n}"))]
    sink = await apply(batch, many)
    assert many.calls == one.calls
    assert len(changed(sink)) == 50
    assert {c.tier for c in many.customers.values()} == {"gold"}


async def test_an_import_of_a_tier_the_program_lacks_is_refused_changing_nothing() -> None:
    tiers = FakeTiers()
    with pytest.raises(ValueError, match="platinum"):
        await apply([imported(tier="platinum")], tiers, THREE_TIERS)
    assert (tiers.customers, tiers.activity) == ({}, {})


async def test_the_imported_tier_is_reviewed_from_its_since_like_any_tier() -> None:
    tiers = FakeTiers()
    await apply([enrolled(), imported()], tiers)
    review_at = datetime(2027, 3, 1, 12, tzinfo=UTC)
    kept_until_review = review_due(
        PROGRAM, tiers.customers["c1"], list(tiers.activity.values()), review_at - timedelta(1)
    )
    assert kept_until_review.customer.tier == "gold" and not kept_until_review.changes
    reviewed = review_due(PROGRAM, tiers.customers["c1"], list(tiers.activity.values()), review_at)
    assert reviewed.customer.tier == "silver"  # one_down: no spend since the import
    [down] = reviewed.changes
    assert (down.reason, down.effective_at) == (REVIEW, review_at)


async def test_spend_after_the_import_raises_the_tier_further() -> None:
    tiers = FakeTiers()
    await apply([enrolled(), imported()], tiers)
    bought = IMPORTED_AT + timedelta(days=10)
    sink = await apply([factories.purchase("c1", "5200", at=bought, purchase_id="p1")], tiers)
    assert tiers.customers["c1"].tier == "platinum"
    [(_, up)] = changed(sink)
    assert (up.from_tier, up.reason) == ("gold", "qualifying_spend")


# -- the replay ------------------------------------------------------------------------------


def test_the_rebuild_gives_the_imported_tier_and_its_review() -> None:
    rebuilt = rebuild_customer(
        PROGRAM,
        "c1",
        enrolled_at=IMPORTED_AT,
        activities=[_import()],
        refunds=(),
        as_of=NOW,
    )
    assert rebuilt is not None
    assert (rebuilt.customer.tier, rebuilt.customer.since) == ("gold", SINCE)
    assert rebuilt.customer.review_at == datetime(2027, 3, 1, 12, tzinfo=UTC)
    [change] = rebuilt.changes
    assert change.reason == IMPORT


def test_a_member_known_by_the_import_alone_is_rebuilt_from_it() -> None:
    rebuilt = rebuild_customer(
        PROGRAM, "c1", enrolled_at=None, activities=[_import()], refunds=(), as_of=NOW
    )
    assert rebuilt is not None and rebuilt.customer.tier == "gold"
    nothing = rebuild_customer(
        THREE_TIERS,
        "c1",
        enrolled_at=None,
        activities=[_import("platinum")],
        refunds=(),
        as_of=NOW,
    )
    assert nothing is None


def _record(event: CloudEvent) -> Record:
    return Record(event.topic, event.to_bytes(), [(EVENT_TYPE_HEADER, event.type.encode())])


def test_the_replay_reads_an_import_as_the_live_consumer_does() -> None:
    batch = read_records([_record(imported("c1")), _record(imported("c2", tier="bronze"))], PROGRAM)
    assert batch.activities == {"import:c1": _import()}
    assert batch.enrolments == {"c1": None}
    assert (batch.events, batch.skipped) == (2, 0)
    refused = read_records([_record(imported("c1", tier="platinum"))], THREE_TIERS)
    assert (refused.activities, refused.events, refused.skipped) == ({}, 0, 1)


async def test_the_worked_example_of_an_imported_member() -> None:
    """docs/tiers.md, "Imported members": Ines, gold since 1 March 2026, imported on
    6 December 2026, buys for 700, is warned on 30 January and reviewed on 1 March 2027."""
    tiers = FakeTiers()
    await apply([factories.enrolment("ines", at=IMPORTED_AT, imported=True)], tiers)
    await apply([imported("ines", "gold", SINCE)], tiers)
    ines = tiers.customers["ines"]
    review_at = datetime(2027, 3, 1, 12, tzinfo=UTC)
    assert (ines.tier, ines.since, ines.review_at) == ("gold", SINCE, review_at)
    bought = datetime(2026, 12, 20, 12, tzinfo=UTC)
    await apply([factories.purchase("ines", "700", at=bought, purchase_id="p1")], tiers)
    activities = list(tiers.activity.values())

    warning = downgrade_warning(
        PROGRAM, tiers.customers["ines"], activities, datetime(2027, 1, 30, 12, tzinfo=UTC)
    )
    assert warning is not None
    assert (warning.would_become, warning.amount_to_keep_tier) == ("silver", Decimal(1300))

    reviewed = review_due(PROGRAM, tiers.customers["ines"], activities, review_at)
    assert (reviewed.customer.tier, reviewed.customer.review_at) == (
        "silver",
        datetime(2028, 2, 29, 12, tzinfo=UTC),
    )
    assert [c.reason for c in reviewed.changes] == [REVIEW]
