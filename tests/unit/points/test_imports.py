"""An imported member (issue 23, product §11): the opening lots of `fedelta.points.imported.v1`
and no welcome bonus unless the import asked for it. The rules, then the handlers on a fake
ledger."""

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.points.bootstrap import make_subscription
from services.points.domain.imports import IMPORT, OpeningLot, opening_lots
from services.points.domain.model import EntryKind, Program, add_months
from services.points.handlers import HANDLED_TYPES
from shared.clock import FixedClock
from shared.messaging import events
from shared.messaging.events import CloudEvent, derived_event_id
from shared.messaging.outbox import CollectingSink
from tests.support import factories
from tests.support.fakes.points import FakeLedger
from tests.support.points import NOW, apply_all, purchase, refund, updated

IMPORTED_AT = NOW - timedelta(minutes=5)
IN_A_MONTH = NOW + timedelta(days=30)
IN_A_YEAR = NOW + timedelta(days=365)


def imported(
    *lots: tuple[int, datetime | None], customer_id: str = "c1", partner_id: str = "old-shop"
) -> CloudEvent:
    return factories.points_import(
        customer_id, lots, at=NOW, imported_at=IMPORTED_AT, partner_id=partner_id
    )


def enrolled(customer_id: str = "c1", *, welcome: bool) -> CloudEvent:
    return factories.enrolment(
        customer_id, at=IMPORTED_AT, enrolled_at=IMPORTED_AT, imported=True, welcome=welcome
    )


def reasons(sink: CollectingSink) -> list[tuple[str, int, str]]:
    return [
        (event.subject, event.data["points"], event.data["reason"]) for _, _, event in sink.events
    ]


# -- the rule ------------------------------------------------------------------------------


def test_each_lot_is_a_bonus_lot_of_the_importing_partner_available_at_once() -> None:
    [lot] = opening_lots(
        Program(),
        customer_id="c1",
        partner_id="old-shop",
        imported_at=IMPORTED_AT,
        lots=[OpeningLot("e1", 250, IN_A_MONTH)],
        now=NOW,
    )
    assert (lot.entry_id, lot.customer_id, lot.kind, lot.points) == (
        "e1",
        "c1",
        EntryKind.BONUS,
        250,
    )
    assert (lot.reason, lot.rule_ids, lot.partner_id) == (IMPORT, (IMPORT,), "old-shop")
    assert lot.occurred_at == lot.available_at == IMPORTED_AT
    assert lot.expires_at == IN_A_MONTH
    assert lot.purchase_id is None


def test_a_lot_without_expiry_has_the_programs_validity_from_the_import() -> None:
    program = Program(validity_months=18)
    [lot] = opening_lots(
        program,
        customer_id="c1",
        partner_id="old-shop",
        imported_at=IMPORTED_AT,
        lots=[OpeningLot("e1", 10)],
        now=NOW,
    )
    assert lot.expires_at == add_months(IMPORTED_AT, 18)


def test_a_lot_expired_at_processing_gives_nothing() -> None:
    lots = opening_lots(
        Program(),
        customer_id="c1",
        partner_id="old-shop",
        imported_at=IMPORTED_AT,
        lots=[
            OpeningLot("gone", 10, NOW - timedelta(seconds=1)),
            OpeningLot("just-now", 20, NOW),
            OpeningLot("kept", 30, NOW + timedelta(seconds=1)),
        ],
        now=NOW,
    )
    assert [lot.entry_id for lot in lots] == ["kept"]


offsets = st.integers(min_value=-400, max_value=400)  # days from now; None: the program's
lot_lists = st.lists(
    st.tuples(st.integers(min_value=1, max_value=10_000), st.none() | offsets), max_size=12
)


@given(lots=lot_lists, validity=st.integers(min_value=0, max_value=36))
def test_the_lots_are_the_valid_ones_in_order_whole(
    lots: list[tuple[int, int | None]], validity: int
) -> None:
    program = Program(validity_months=validity)
    wanted = [
        OpeningLot(f"e{n}", points, None if days is None else NOW + timedelta(days=days))
        for n, (points, days) in enumerate(lots)
    ]
    made = opening_lots(
        program,
        customer_id="c1",
        partner_id="old-shop",
        imported_at=IMPORTED_AT,
        lots=wanted,
        now=NOW,
    )
    expected = [
        (lot.entry_id, lot.points, expiry)
        for lot in wanted
        for expiry in (lot.expires_at or program.expiry_for(IMPORTED_AT),)
        if expiry > NOW
    ]
    assert [(lot.entry_id, lot.points, lot.expires_at) for lot in made] == expected
    assert all(lot.kind is EntryKind.BONUS and lot.available_at <= NOW for lot in made)


# -- the handlers ----------------------------------------------------------------------------


def test_points_handles_the_import() -> None:
    assert events.POINTS_IMPORTED in HANDLED_TYPES
    subscription = make_subscription(Program(), FixedClock(NOW))
    assert events.POINTS_IMPORTED in subscription.event_types


async def test_the_import_makes_the_lots_and_announces_each() -> None:
    ledger = FakeLedger()
    event = imported((300, IN_A_MONTH), (200, None), (50, NOW - timedelta(days=1)))
    sink = await apply_all([event], ledger)

    lots = ledger.entries("c1")
    assert [(e.points, e.expires_at) for e in lots] == [
        (300, IN_A_MONTH),
        (200, add_months(IMPORTED_AT, 12)),
    ]
    assert [e.entry_id for e in lots] == [
        derived_event_id(event.id, "import-lot/0"),
        derived_event_id(event.id, "import-lot/1"),
    ]
    assert all(e.partner_id == "old-shop" and e.reason == IMPORT for e in lots)
    balance = ledger.balance("c1")
    assert (balance.available, balance.pending, balance.lifetime_earned) == (500, 0, 500)

    assert reasons(sink) == [("c1", 300, "import"), ("c1", 200, "import")]
    announced = [announced for _, _, announced in sink.events]
    assert all(e.type == events.POINTS_EARNED for e in announced)
    assert [datetime.fromisoformat(e.data["expires_at"]) for e in announced] == [
        lot.expires_at for lot in lots
    ]
    assert all(e.data["rule_ids"] == ["import"] for e in announced)
    assert all(e.data["purchase_id"] is None for e in announced)
    assert len({e.id for e in announced}) == 2


async def test_a_redelivered_import_adds_and_announces_nothing() -> None:
    ledger = FakeLedger()
    event = imported((300, IN_A_MONTH), (200, None))
    first = await apply_all([event, event], ledger)
    again = await apply_all([event], ledger)
    assert sum(e.points for e in ledger.entries("c1")) == 500
    assert len(first.events) == 2
    assert again.events == []


async def test_an_import_of_expired_lots_only_records_nothing() -> None:
    ledger = FakeLedger()
    sink = await apply_all([imported((40, NOW - timedelta(hours=1)))], ledger)
    assert ledger.ledger == {}
    assert sink.events == []


async def test_an_import_of_a_tier_alone_records_nothing() -> None:
    ledger = FakeLedger()
    event = factories.points_import("c1", at=NOW, tier="gold", tier_since=NOW - timedelta(days=9))
    sink = await apply_all([event], ledger)
    assert ledger.ledger == {}
    assert sink.events == []


async def test_without_the_welcome_an_imported_member_gets_only_the_lots() -> None:
    ledger = FakeLedger()
    sink = await apply_all([enrolled(welcome=False), imported((300, IN_A_MONTH))], ledger)
    assert "c1" in ledger.customers
    assert [(e.points, e.reason) for e in ledger.entries("c1")] == [(300, "import")]
    assert reasons(sink) == [("c1", 300, "import")]


async def test_the_lots_may_come_before_the_enrolment() -> None:
    ledger = FakeLedger()
    await apply_all([imported((300, IN_A_MONTH))], ledger)
    await apply_all([enrolled(welcome=False)], ledger)
    assert ledger.balance("c1").available == 300
    assert [e.reason for e in ledger.entries("c1")] == ["import"]


async def test_with_the_welcome_an_imported_member_gets_the_bonus_too() -> None:
    ledger = FakeLedger()
    sink = await apply_all([imported((300, IN_A_MONTH)), enrolled(welcome=True)], ledger)
    assert sorted((e.points, e.reason) for e in ledger.entries("c1")) == [
        (100, "welcome"),
        (300, "import"),
    ]
    assert sorted(reasons(sink)) == [("c1", 100, "welcome"), ("c1", 300, "import")]


async def test_an_enrolment_that_is_not_imported_welcomes_as_always() -> None:
    ledger = FakeLedger()
    await apply_all([factories.enrolment("c1", at=NOW)], ledger)
    assert [(e.points, e.reason) for e in ledger.entries("c1")] == [(100, "welcome")]


async def test_a_later_profile_of_a_member_imported_without_welcome_grants_none() -> None:
    ledger = FakeLedger()
    await apply_all([enrolled(welcome=False), updated("c1")], ledger)
    await apply_all([updated("c1")], ledger)
    assert ledger.entries("c1") == []


async def test_an_imported_member_earns_and_refunds_as_any_member() -> None:
    ledger = FakeLedger()
    await apply_all([enrolled(welcome=False), imported((300, IN_A_MONTH))], ledger)
    await apply_all([purchase("p1", "40.00"), refund("r1", "p1", "40.00")], ledger)
    balance = ledger.balance("c1")
    assert (balance.available, balance.debt) == (300, 0)
    assert balance.next_expiries[0].expires_at == IN_A_MONTH


@settings(max_examples=50, deadline=None)
@given(
    lots=lot_lists,
    copies=st.integers(min_value=1, max_value=3),
    cut=st.integers(min_value=0, max_value=6),
    welcome=st.booleans(),
)
async def test_any_batching_and_redelivery_gives_the_same_ledger(
    lots: list[tuple[int, int | None]], copies: int, cut: int, welcome: bool
) -> None:
    """The enrolment, the import and purchases of two members, delivered `copies` times and
    cut into two batches anywhere: the ledger is the valid lots, the bonus only with the
    welcome, each announced once."""
    wanted = [(p, None if d is None else NOW + timedelta(days=d)) for p, d in lots]
    stream: list[CloudEvent] = []
    for customer in ("c1", "c2"):
        stream += [
            enrolled(customer, welcome=welcome),
            imported(*wanted, customer_id=customer),
            purchase(f"{customer}-p", "10.00", customer_id=customer),
        ]
    stream = stream * copies
    ledger = FakeLedger()
    first = await apply_all(stream[:cut], ledger)
    second = await apply_all(stream[cut:], ledger)

    valid = sum(p for p, at in wanted if at is None or at > NOW)
    announced = [e for sink in (first, second) for _, _, e in sink.events]
    for customer in ("c1", "c2"):
        points = sum(e.points for e in ledger.entries(customer))
        assert points == valid + 10 + (100 if welcome else 0)
        assert sum(e.data["points"] for e in announced if e.subject == customer) == points
    assert len({e.id for e in announced}) == len(announced)
