"""Targeting (issue 21): campaigns for a tier or a segment, the segment read model fed by
insights, and the win-back offer, on the fake ledger."""

from __future__ import annotations

import itertools
from collections.abc import Collection
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.points.adapters.program_file import ProgramError, load_program
from services.points.api.schemas import CampaignIn, CampaignOut, CampaignPatchIn
from services.points.domain.earning import Campaign, PurchaseFacts, purchase_points
from services.points.domain.model import Program, WinBackOffer
from services.points.domain.offers import (
    WIN_BACK_SEGMENT,
    Membership,
    PersonalOffer,
    SegmentChange,
    win_back_offer,
)
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent, derived_event_id, new_event
from shared.messaging.outbox import CollectingSink
from tests.support.fakes.points import FakeLedger
from tests.support.points import NOW, apply_all, purchase, tier_change

DOUBLE = WinBackOffer(name="Double points to welcome you back", days=14, multiplier=Decimal(2))
OFFERING = Program(win_back_offer=DOUBLE)
PROGRAM = Program()


def entered(segment: str, at: timedelta = timedelta(0), customer_id: str = "c1") -> CloudEvent:
    return _change(events.SegmentEntered, segment, at, customer_id)


def left(segment: str, at: timedelta = timedelta(0), customer_id: str = "c1") -> CloudEvent:
    return _change(events.SegmentLeft, segment, at, customer_id)


def _change(
    kind: type[events.SegmentMembershipChanged], segment: str, at: timedelta, customer_id: str
) -> CloudEvent:
    """A change evaluated `at` before NOW (a negative delta: after it)."""
    changed_at = NOW - at
    payload = kind(customer_id=customer_id, segment=segment, changed_at=changed_at)
    return new_event(payload, source="insights", subject=customer_id, time=changed_at)


def campaign(**fields: object) -> Campaign:
    values: dict[str, object] = {
        "campaign_id": "vip",
        "name": "double for the segment",
        "starts_at": NOW - timedelta(days=30),
        "ends_at": NOW + timedelta(days=30),
        "multiplier": Decimal(2),
    }
    values.update(fields)
    return Campaign(**values)  # type: ignore[arg-type]


def facts(total: str = "10.00", at: timedelta = timedelta(0)) -> PurchaseFacts:
    return PurchaseFacts(
        partner_id="demo", store_id=None, occurred_at=NOW + at, total=Decimal(total)
    )


def earned(sink: CollectingSink) -> list[tuple[str, int, list[str]]]:
    return [
        (event.subject, event.data["points"], event.data["rule_ids"])
        for _, _, event in sink.events
        if event.type == events.POINTS_EARNED
    ]


def offers_granted(sink: CollectingSink) -> list[CloudEvent]:
    return [event for _, _, event in sink.events if event.type == events.POINTS_OFFER_GRANTED]


# -- the domain ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tier", "segments", "points"),
    [
        ("gold", frozenset({"loyalty:happy"}), 30),  # 10 * 1.5 * 2
        ("gold", frozenset(), 15),
        ("silver", frozenset({"loyalty:happy"}), 12),
        (None, frozenset({"loyalty:happy"}), 10),
    ],
)
def test_a_campaign_with_a_tier_and_a_segment_scopes_only_members_of_both(
    tier: str | None, segments: frozenset[str], points: int
) -> None:
    targeted = campaign(tier="gold", segment="loyalty:happy")
    earning = purchase_points(PROGRAM, facts(), tier=tier, campaigns=[targeted], segments=segments)
    assert earning.points == points
    assert ("campaign:vip" in earning.rule_ids) == (points == 30)


def test_an_untargeted_campaign_scopes_every_member() -> None:
    assert campaign().scopes(facts())
    assert campaign().scopes(facts(), "bronze", frozenset({"x"}))
    assert not campaign(segment="x").scopes(facts(), "bronze", frozenset({"y"}))
    assert not campaign(tier="gold").scopes(facts(), "platinum")


def test_a_personal_offer_boosts_like_a_campaign_under_its_own_rule_id() -> None:
    offer = PersonalOffer(
        offer_id="o1",
        customer_id="c1",
        reason="win_back",
        name="back",
        starts_at=NOW - timedelta(days=1),
        ends_at=NOW + timedelta(days=1),
        multiplier=Decimal(2),
        bonus=5,
    )
    earning = purchase_points(PROGRAM, facts(), tier=None, campaigns=(), offers=[offer.terms()])
    assert (earning.points, earning.rule_ids) == (25, ("base", "offer:o1"))
    later = purchase_points(
        PROGRAM, facts(at=timedelta(days=1)), tier=None, campaigns=(), offers=[offer.terms()]
    )
    assert (later.points, later.rule_ids) == (10, ("base",))  # ends_at is outside the offer


def test_a_win_back_offer_is_made_on_entering_lapsed_only_and_never_stacked() -> None:
    entry = SegmentChange("c1", WIN_BACK_SEGMENT, True, NOW)
    offer = win_back_offer(DOUBLE, entry, offer_id="o1", offers=[])
    assert offer is not None
    assert (offer.starts_at, offer.ends_at) == (NOW, NOW + timedelta(days=14))
    assert (offer.multiplier, offer.bonus, offer.reason) == (Decimal(2), None, "win_back")
    assert win_back_offer(None, entry, offer_id="o1", offers=[]) is None
    leaving = SegmentChange("c1", WIN_BACK_SEGMENT, False, NOW)
    assert win_back_offer(DOUBLE, leaving, offer_id="o1", offers=[]) is None
    other = SegmentChange("c1", "lifecycle:at_risk", True, NOW)
    assert win_back_offer(DOUBLE, other, offer_id="o1", offers=[]) is None
    later = SegmentChange("c1", WIN_BACK_SEGMENT, True, NOW + timedelta(days=3))
    assert win_back_offer(DOUBLE, later, offer_id="o2", offers=[offer]) is None
    much_later = SegmentChange("c1", WIN_BACK_SEGMENT, True, NOW + timedelta(days=14))
    assert win_back_offer(DOUBLE, much_later, offer_id="o2", offers=[offer]) is not None


# -- the read model -----------------------------------------------------------------------


async def test_segment_changes_keep_the_newest_per_member_and_segment() -> None:
    ledger = FakeLedger()
    await apply_all([entered("loyalty:happy", timedelta(hours=2))], ledger, program=PROGRAM)
    assert ledger.in_segment("c1") == {"loyalty:happy"}
    await apply_all([left("loyalty:happy", timedelta(hours=3))], ledger, program=PROGRAM)
    assert ledger.in_segment("c1") == {"loyalty:happy"}  # older: ignored
    await apply_all([left("loyalty:happy", timedelta(hours=1))], ledger, program=PROGRAM)
    assert ledger.in_segment("c1") == set()
    assert ledger.segments["c1", "loyalty:happy"] == Membership(False, NOW - timedelta(hours=1))


@pytest.mark.parametrize("split", [0, 1, 2, 3])
async def test_the_read_model_ends_the_same_whatever_the_order_and_batches(split: int) -> None:
    changes = [
        entered("loyalty:price", timedelta(hours=3)),
        left("loyalty:price", timedelta(hours=2)),
        entered("loyalty:price", timedelta(hours=1)),
        left("tier:gold", timedelta(hours=2)),
        entered("tier:gold", timedelta(hours=4)),
        entered("x-custom", timedelta(hours=5), customer_id="c2"),
    ]
    outcomes = set()
    for order in itertools.permutations(changes):
        ledger = FakeLedger()
        await apply_all(order[:split], ledger, program=PROGRAM)
        await apply_all(order[split:], ledger, program=PROGRAM)
        outcomes.add(tuple(sorted(ledger.segments.items())))
    assert outcomes == {
        (
            (("c1", "loyalty:price"), Membership(True, NOW - timedelta(hours=1))),
            (("c1", "tier:gold"), Membership(False, NOW - timedelta(hours=2))),
            (("c2", "x-custom"), Membership(True, NOW - timedelta(hours=5))),
        )
    }


async def test_one_statement_keeps_a_batchs_segment_changes() -> None:
    ledger = FakeLedger()
    await apply_all(
        [entered(f"seg-{n}", timedelta(minutes=n), f"c{n % 7}") for n in range(100)],
        ledger,
        program=PROGRAM,
    )
    assert ledger.calls == ["targeting_of", "set_segments"]
    assert len(ledger.segments) == 100


# -- campaigns for a segment or a tier ----------------------------------------------------


async def test_a_segment_campaign_boosts_only_its_members_as_of_each_purchase() -> None:
    ledger = FakeLedger()
    ledger.campaigns.append(campaign(segment="loyalty:happy"))
    await apply_all([entered("loyalty:happy", timedelta(hours=1))], ledger, program=PROGRAM)
    sink = await apply_all(
        [
            purchase("p1", "10.00"),
            purchase("p2", "10.00", customer_id="c2"),
            entered("loyalty:happy", timedelta(minutes=30), customer_id="c2"),
            purchase("p3", "10.00", customer_id="c2"),
            left("loyalty:happy", timedelta(minutes=10)),
            purchase("p4", "10.00"),
        ],
        ledger,
        program=PROGRAM,
    )
    assert earned(sink) == [
        ("c1", 20, ["base", "campaign:vip"]),
        ("c2", 10, ["base"]),
        ("c2", 20, ["base", "campaign:vip"]),
        ("c1", 10, ["base"]),
    ]
    assert ledger.calls.count("targeting_of") == 2  # one a batch


async def test_a_tier_campaign_boosts_members_of_that_tier_as_points_knows_it() -> None:
    ledger = FakeLedger()
    ledger.campaigns.append(campaign(tier="gold", multiplier=None, bonus=50))
    sink = await apply_all(
        [purchase("p1", "10.00"), tier_change("gold", 20), purchase("p2", "10.00")],
        ledger,
        program=PROGRAM,
    )
    assert earned(sink) == [("c1", 10, ["base"]), ("c1", 65, ["base", "tier:gold", "campaign:vip"])]


class _Asking(FakeLedger):
    """Records whose segments each batch asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[set[str]] = []

    async def targeting_of(
        self,
        members: Collection[str],
        offered: Collection[str],
        earliest: datetime,
        latest: datetime,
    ) -> tuple[dict[str, dict[str, Membership]], dict[str, list[PersonalOffer]]]:
        self.asked.append(set(members))
        return await super().targeting_of(members, offered, earliest, latest)


async def test_without_a_segment_campaign_buyers_segments_are_not_read() -> None:
    ledger = _Asking()
    await apply_all([entered("loyalty:happy", timedelta(hours=1))], ledger, program=PROGRAM)
    await apply_all([purchase("p1", "10.00")], ledger, program=PROGRAM)
    ledger.campaigns.append(campaign(segment="loyalty:happy"))
    await apply_all([purchase("p2", "10.00")], ledger, program=PROGRAM)
    assert ledger.asked == [{"c1"}, set(), {"c1"}]


# -- the win-back offer -------------------------------------------------------------------


async def test_entering_lapsed_makes_one_offer_announced_once_and_the_next_purchase_earns_it() -> (
    None
):
    ledger = FakeLedger()
    entry = entered(WIN_BACK_SEGMENT, timedelta(hours=1))
    sink = await apply_all([entry], ledger, program=OFFERING)
    [(topic, key, granted)] = sink.events
    offer_id = derived_event_id(entry.id, "win-back-offer")
    assert (topic, key, granted.type) == (topics.POINTS, "c1", events.POINTS_OFFER_GRANTED)
    assert granted.id == derived_event_id(entry.id, "offer-granted")
    assert granted.data_as(events.PointsOfferGranted) == events.PointsOfferGranted(
        offer_id=offer_id,
        customer_id="c1",
        reason="win_back",
        name=DOUBLE.name,
        multiplier=Decimal(2),
        starts_at=NOW - timedelta(hours=1),
        ends_at=NOW - timedelta(hours=1) + timedelta(days=14),
    )
    again = await apply_all([entry], ledger, program=OFFERING)  # delivered again
    assert again.events == [] and list(ledger.offers) == [offer_id]
    bought = await apply_all(
        [purchase("p1", "10.00"), purchase("p2", "10.00", customer_id="c2")],
        ledger,
        program=OFFERING,
    )
    assert earned(bought) == [("c1", 20, ["base", f"offer:{offer_id}"]), ("c2", 10, ["base"])]
    after = await apply_all(
        [purchase("p3", "10.00", at=NOW + timedelta(days=14))], ledger, program=OFFERING
    )
    assert earned(after) == [("c1", 10, ["base"])]


async def test_the_offer_counts_for_a_purchase_later_in_the_same_batch() -> None:
    ledger = FakeLedger()
    sink = await apply_all(
        [
            purchase("p0", "10.00", at=NOW - timedelta(hours=2)),
            entered(WIN_BACK_SEGMENT, timedelta(hours=1)),
            purchase("p1", "10.00"),
        ],
        ledger,
        program=OFFERING,
    )
    [offer_id] = ledger.offers
    assert earned(sink) == [("c1", 10, ["base"]), ("c1", 20, ["base", f"offer:{offer_id}"])]
    assert len(offers_granted(sink)) == 1


async def test_no_offer_without_one_configured_nor_for_a_stale_entry() -> None:
    ledger = FakeLedger()
    sink = await apply_all([entered(WIN_BACK_SEGMENT, timedelta(days=3))], ledger)
    assert (sink.events, ledger.offers) == ([], {})
    await apply_all([left(WIN_BACK_SEGMENT, timedelta(days=1))], ledger, program=OFFERING)
    stale = await apply_all(
        [entered(WIN_BACK_SEGMENT, timedelta(days=2))], ledger, program=OFFERING
    )
    assert (stale.events, ledger.offers) == ([], {})


async def test_lapsing_again_after_buying_makes_a_new_offer() -> None:
    ledger = FakeLedger()
    first = await apply_all(
        [entered(WIN_BACK_SEGMENT, timedelta(days=200))], ledger, program=OFFERING
    )
    await apply_all(
        [
            left(WIN_BACK_SEGMENT, timedelta(days=190)),
            entered("lifecycle:won_back", timedelta(days=190)),
        ],
        ledger,
        program=OFFERING,
    )
    second = await apply_all(
        [entered(WIN_BACK_SEGMENT, timedelta(days=1))], ledger, program=OFFERING
    )
    assert len(offers_granted(first)) == len(offers_granted(second)) == 1
    assert len(ledger.offers) == 2


async def test_an_erasure_deletes_the_members_segments_and_offers() -> None:
    ledger = FakeLedger()
    await apply_all(
        [
            entered(WIN_BACK_SEGMENT, timedelta(hours=2)),
            entered("loyalty:happy", timedelta(hours=2)),
            entered("loyalty:happy", timedelta(hours=2), customer_id="c2"),
        ],
        ledger,
        program=OFFERING,
    )
    assert len(ledger.offers) == 1
    erased = new_event(
        events.CustomerErased(customer_id="c1"), source="ingest/demo", subject="c1", time=NOW
    )
    sink = await apply_all([erased], ledger, program=OFFERING)
    assert sink.events == []
    assert (ledger.in_segment("c1"), ledger.offers) == (set(), {})
    assert ledger.in_segment("c2") == {"loyalty:happy"}


async def test_an_erasure_in_the_batch_drops_what_came_before_it_only() -> None:
    ledger = FakeLedger()
    erased = new_event(
        events.CustomerErased(customer_id="c1"), source="ingest/demo", subject="c1", time=NOW
    )
    sink = await apply_all(
        [
            entered(WIN_BACK_SEGMENT, timedelta(hours=2)),
            entered("loyalty:happy", timedelta(hours=2)),
            erased,
            entered("loyalty:price", timedelta(hours=1)),
        ],
        ledger,
        program=OFFERING,
    )
    assert offers_granted(sink) == [] and ledger.offers == {}
    assert ledger.in_segment("c1") == {"loyalty:price"}
    assert ledger.calls[-2:] == ["erase_targeting", "set_segments"]


# -- the API and the program file ---------------------------------------------------------


def _body(**fields: object) -> dict[str, object]:
    return {
        "name": "gold members",
        "bonus": 10,
        "starts_at": "2026-11-01T00:00:00Z",
        "ends_at": "2026-12-01T00:00:00Z",
        **fields,
    }


def test_a_campaign_may_name_a_tier_and_a_segment() -> None:
    body = CampaignIn.model_validate(_body(tier="gold", segment="lifecycle:at_risk"))
    assert (body.tier, body.segment) == ("gold", "lifecycle:at_risk")
    assert CampaignPatchIn.model_validate({"segment": None}).changes() == {"segment": None}


@pytest.mark.parametrize(
    "fields",
    [{"tier": "diamond"}, {"segment": "Loyalty:happy"}, {"segment": "a:b"}, {"segment": ""}],
)
def test_a_bad_tier_or_segment_is_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CampaignIn.model_validate(_body(**fields))


def test_the_campaigns_json_names_a_tier_and_a_segment_only_when_it_has_them() -> None:
    out = CampaignOut(
        id="c",
        name="n",
        multiplier=None,
        bonus=1,
        partner_id=None,
        store_id=None,
        category=None,
        starts_at=NOW,
        ends_at=NOW + timedelta(days=1),
        validity_days=None,
    )
    assert "tier" not in out.model_dump(mode="json")
    targeted = out.model_copy(update={"tier": "gold", "segment": "vip"}).model_dump(mode="json")
    assert (targeted["tier"], targeted["segment"]) == ("gold", "vip")


def _program_file(tmp_path: Path, offer: str) -> Path:
    text = Path("services/points/program.yaml").read_text() + offer
    path = tmp_path / "program.yaml"
    path.write_text(text)
    return path


def test_the_default_program_makes_no_offer() -> None:
    assert load_program().win_back_offer is None


def test_the_program_file_configures_the_win_back_offer(tmp_path: Path) -> None:
    offer = '\nwin_back_offer: {name: "Welcome back", multiplier: "1.5", bonus: 20, days: 7}\n'
    program = load_program(_program_file(tmp_path, offer))
    assert program.win_back_offer == WinBackOffer(
        name="Welcome back", days=7, multiplier=Decimal("1.5"), bonus=20
    )
    assert load_program(_program_file(tmp_path, "\nwin_back_offer: null\n")).win_back_offer is None


@pytest.mark.parametrize(
    "offer",
    [
        '{name: "x", days: 14}',  # gives nothing
        '{name: "x", days: 0, multiplier: "2"}',
        '{name: "x", days: 14, multiplier: "0.5"}',
        '{name: "x", days: 14, multiplier: "2", colour: red}',
    ],
)
def test_a_bad_win_back_offer_is_refused_naming_it(tmp_path: Path, offer: str) -> None:
    with pytest.raises(ProgramError, match="win_back_offer"):
        load_program(_program_file(tmp_path, f"\nwin_back_offer: {offer}\n"))
