"""Member imports (product §11): a row's bounds, the rules that need the clock, duplicates
within a call, the outcome of every row, and the events a new member gets; and the birthday
of an enrolment and a profile change."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from fedelta_cli import imports as cli_imports
from services.ingest.api.schemas import (
    MAX_IMPORT_ROWS,
    CustomerPatchIn,
    EnrolmentIn,
    ImportRowIn,
    MembersImportIn,
    import_row,
)
from services.ingest.domain import imports
from services.ingest.domain.imports import ImportRow, Refusal
from services.ingest.domain.model import (
    CustomerProfile,
    RuleViolation,
    ensure_birthday_in_range,
    erased,
    patched,
)
from services.ingest.usecases.imports import (
    enrolment_event_id,
    member_events,
    points_event_id,
)
from shared.bounds import MAX_POINTS
from shared.messaging import events

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def profile(customer_id: str = "c-1", **changes: Any) -> CustomerProfile:
    fields: dict[str, Any] = dict(
        customer_id=customer_id,
        partner_id="p-1",
        enrolled_at=NOW,
        locale="en",
        time_zone="UTC",
        email=None,
        phone=None,
        consent_email=False,
        consent_sms=False,
        referred_by=None,
    )
    return CustomerProfile(**(fields | changes))


def row(line: int, customer_id: str = "c-1", **changes: Any) -> ImportRow:
    birthday = changes.pop("birthday", None)
    return ImportRow(line=line, profile=profile(customer_id, birthday=birthday), **changes)


class TestRowBounds:
    def test_a_row_with_every_column(self) -> None:
        checked = import_row(
            {
                "customer_id": "c-1",
                "email": "ada@example.com",
                "phone": "+358 40 123 4567",
                "locale": "fi-FI",
                "time_zone": "Europe/Helsinki",
                "consent_email": True,
                "consent_sms": False,
                "birthday": "1990-04-23",
                "points": 1200,
                "points_expire_at": "2027-06-30T00:00:00Z",
                "tier": "gold",
                "tier_since": "2025-01-01T00:00:00+02:00",
            }
        )
        assert isinstance(checked, ImportRowIn)
        assert checked.phone == "+358401234567"
        assert checked.birthday == date(1990, 4, 23)
        assert checked.tier_since == datetime(2024, 12, 31, 22, tzinfo=UTC)

    def test_only_the_customer_id_is_required(self) -> None:
        checked = import_row({"customer_id": "c-1"})
        assert isinstance(checked, ImportRowIn)
        assert (checked.points, checked.tier, checked.locale) == (None, None, "en")
        assert import_row({}) == "customer_id: required"

    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"customer_id": "has space"}, "customer_id"),
            ({"customer_id": "x" * 65}, "customer_id"),
            ({"email": "not-an-email"}, "email"),
            ({"phone": "0401234567"}, "phone"),
            ({"locale": "english please"}, "locale"),
            ({"time_zone": "Mars/Olympus"}, "time_zone"),
            ({"consent_email": "maybe"}, "consent_email"),
            ({"birthday": "23.4.1990"}, "birthday"),
            ({"birthday": 640_000_000}, "birthday"),
            ({"birthday": "1990-02-30"}, "birthday"),
            ({"points": -1}, "points"),
            ({"points": MAX_POINTS + 1}, "points"),
            ({"points": "100"}, "points"),
            ({"points": 1.5}, "points"),
            ({"points_expire_at": "2027-06-30"}, "points_expire_at"),
            ({"tier": "diamond"}, "tier"),
            ({"tier_since": "yesterday"}, "tier_since"),
            ({"nickname": "Ada"}, "nickname"),
        ],
    )
    def test_a_field_out_of_bounds_is_named(self, fields: dict[str, Any], field: str) -> None:
        reason = import_row({"customer_id": "c-1", **fields})
        assert isinstance(reason, str)
        assert reason.startswith(f"{field}: ")

    def test_the_reason_never_quotes_the_value(self) -> None:
        reason = import_row({"customer_id": "c-1", "email": "secret-person@@example"})
        assert isinstance(reason, str)
        assert "secret-person" not in reason
        assert reason == "email: not an email address"

    def test_a_call_holds_1_to_500_rows_each_with_its_line(self) -> None:
        def call(rows: list[dict[str, Any]]) -> MembersImportIn:
            return MembersImportIn.model_validate_json(
                json.dumps({"partner_id": "p-1", "rows": rows})
            )

        parsed = call([{"line": 2, "customer_id": "c-1", "points": 5}])
        assert parsed.welcome is False
        assert parsed.rows[0].line == 2
        assert parsed.rows[0].fields() == {"customer_id": "c-1", "points": 5}
        for rows in ([], [{"line": n + 2} for n in range(MAX_IMPORT_ROWS + 1)]):
            with pytest.raises(ValidationError):
                call(rows)
        for bad in ({"customer_id": "c-1"}, {"line": 0}, {"line": "2"}):
            with pytest.raises(ValidationError):
                call([bad])


class TestRules:
    def test_points_must_expire_in_the_future(self) -> None:
        assert (
            imports.refusal(row(2, points=5, points_expire_at=NOW + timedelta(seconds=1)), NOW)
            is None
        )
        refused = imports.refusal(row(2, points=5, points_expire_at=NOW), NOW)
        assert refused == Refusal(
            2, "c-1", "points_expire_at: must be in the future (expired points are not imported)"
        )

    def test_a_tier_since_must_not_be_in_the_future_nor_without_a_tier(self) -> None:
        assert imports.refusal(row(2, tier="gold", tier_since=NOW), NOW) is None
        late = imports.refusal(row(2, tier="gold", tier_since=NOW + timedelta(minutes=1)), NOW)
        assert late is not None and late.reason.startswith("tier_since:")
        alone = imports.refusal(row(2, tier_since=NOW - timedelta(days=1)), NOW)
        assert alone is not None and alone.reason == "tier_since: given without a tier"

    def test_a_birthday_is_from_1900_to_today(self) -> None:
        assert imports.refusal(row(2, birthday=date(1900, 1, 1)), NOW) is None
        assert imports.refusal(row(2, birthday=NOW.date()), NOW) is None
        for wrong in (date(1899, 12, 31), NOW.date() + timedelta(days=2)):
            refused = imports.refusal(row(2, birthday=wrong), NOW)
            assert refused is not None and refused.reason.startswith("birthday")

    def test_an_opening_is_points_or_a_tier(self) -> None:
        assert not row(2).has_opening
        assert not row(2, points=0).has_opening
        assert row(2, points=1).has_opening
        assert row(2, tier="bronze").has_opening


class TestDecide:
    def test_a_later_row_of_the_same_customer_is_refused_with_the_first_line(self) -> None:
        decided = imports.decide(
            [row(2, "a"), row(3, "b"), row(4, "a"), Refusal(5, "b", "email: x"), row(6, "b")],
            NOW,
        )
        assert [type(d).__name__ for d in decided] == [
            "ImportRow",
            "ImportRow",
            "Refusal",
            "Refusal",
            "Refusal",
        ]
        assert decided[2] == Refusal(4, "a", "duplicate in this file (first on line 2)")
        assert decided[3] == Refusal(5, "b", "duplicate in this file (first on line 3)")
        assert decided[4] == Refusal(6, "b", "duplicate in this file (first on line 3)")

    def test_a_row_refused_first_still_makes_the_later_one_a_duplicate(self) -> None:
        decided = imports.decide([Refusal(2, "a", "email: x"), row(3, "a")], NOW)
        assert decided[1] == Refusal(3, "a", "duplicate in this file (first on line 2)")

    def test_outcomes_follow_the_rows_order(self) -> None:
        decided = imports.decide(
            [row(2, "new"), row(3, "old"), row(4, "bad", points=1, points_expire_at=NOW)], NOW
        )
        outcomes = imports.outcomes(decided, inserted={"new"})
        assert [(o.line, o.customer_id, o.outcome) for o in outcomes] == [
            (2, "new", "imported"),
            (3, "old", "exists"),
            (4, "bad", "refused"),
        ]
        assert outcomes[2].reason is not None

    @given(st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=30))
    def test_each_customer_is_kept_at_most_once_and_every_row_has_one_outcome(
        self, ids: list[str]
    ) -> None:
        rows = [row(line, customer_id) for line, customer_id in enumerate(ids, start=2)]
        decided = imports.decide(rows, NOW)
        kept = imports.kept(decided)
        assert sorted(r.customer_id for r in kept) == sorted(set(ids))
        outcomes = imports.outcomes(decided, inserted={r.customer_id for r in kept})
        assert [o.line for o in outcomes] == [r.line for r in rows]
        assert sum(o.outcome == "imported" for o in outcomes) == len(set(ids))


class TestEvents:
    def test_a_new_member_gets_an_imported_enrolment_then_the_opening(self) -> None:
        expiry = NOW + timedelta(days=90)
        member = row(
            2,
            "c-1",
            birthday=date(1990, 4, 23),
            points=300,
            points_expire_at=expiry,
            tier="silver",
            tier_since=NOW - timedelta(days=10),
        )
        made = member_events([member, row(3, "c-2")], welcome=False, now=NOW)
        assert [(topic, key, event.type) for topic, key, event in made] == [
            ("fedelta.customers.v1", "c-1", events.CUSTOMER_ENROLLED),
            ("fedelta.purchases.v1", "c-1", events.POINTS_IMPORTED),
            ("fedelta.customers.v1", "c-2", events.CUSTOMER_ENROLLED),
        ]
        enrolled = made[0][2].data_as(events.CustomerEnrolled)
        assert (enrolled.imported, enrolled.welcome, enrolled.version) == (True, False, 1)
        assert enrolled.birthday == date(1990, 4, 23)
        assert made[0][2].id == enrolment_event_id("c-1")
        opening = made[1][2].data_as(events.PointsImported)
        assert made[1][2].id == points_event_id("c-1")
        assert opening.lots == [events.ImportedLot(points=300, expires_at=expiry)]
        assert (opening.tier, opening.partner_id, opening.imported_at) == ("silver", "p-1", NOW)

    def test_the_welcome_flag_travels_and_a_tier_alone_has_no_lot(self) -> None:
        made = member_events([row(2, "c-1", tier="gold")], welcome=True, now=NOW)
        assert made[0][2].data_as(events.CustomerEnrolled).welcome is True
        opening = made[1][2].data_as(events.PointsImported)
        assert (opening.lots, opening.tier, opening.tier_since) == ([], "gold", None)

    def test_event_ids_derive_from_the_customer(self) -> None:
        assert enrolment_event_id("c-1") == enrolment_event_id("c-1")
        assert (
            len({enrolment_event_id("c-1"), points_event_id("c-1"), enrolment_event_id("c-2")}) == 3
        )


class TestBirthday:
    def test_an_enrolment_and_a_patch_may_carry_one(self) -> None:
        enrolment = EnrolmentIn.model_validate_json(
            '{"customer_id": "c-1", "birthday": "1990-04-23"}'
        )
        assert enrolment.birthday == date(1990, 4, 23)
        assert EnrolmentIn.model_validate_json('{"customer_id": "c-1"}').birthday is None
        patch = CustomerPatchIn.model_validate_json('{"birthday": "1990-04-23"}')
        assert patch.changes() == {"birthday": date(1990, 4, 23)}
        assert CustomerPatchIn.model_validate_json('{"birthday": null}').changes() == {
            "birthday": None
        }

    @pytest.mark.parametrize("spelling", ['"1990-4-23"', "640000000", '"1990-04-23T00:00:00Z"'])
    def test_only_yyyy_mm_dd(self, spelling: str) -> None:
        with pytest.raises(ValidationError):
            EnrolmentIn.model_validate_json(f'{{"customer_id": "c-1", "birthday": {spelling}}}')

    def test_the_range_is_checked_against_the_clock(self) -> None:
        ensure_birthday_in_range(None, NOW)
        ensure_birthday_in_range(date(1900, 1, 1), NOW)
        # Already the 7th somewhere on Earth (UTC+14) at noon UTC on the 6th.
        ensure_birthday_in_range(date(2026, 12, 7), NOW)
        for wrong in (date(1899, 12, 31), date(2026, 12, 8)):
            with pytest.raises(RuleViolation):
                ensure_birthday_in_range(wrong, NOW)

    def test_a_patch_changes_it_and_erasure_removes_it(self) -> None:
        born = profile(birthday=date(1990, 4, 23))
        assert patched(born, {"birthday": date(1991, 1, 1)}).birthday == date(1991, 1, 1)
        assert patched(born, {"birthday": None}).birthday is None
        assert erased(born, NOW).birthday is None


EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"


@pytest.mark.parametrize("name", ["members.csv", "members.ndjson"])
def test_the_documented_examples_import_cleanly_and_say_the_same(name: str) -> None:
    path = EXAMPLES / name
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(cli_imports.read_rows(handle, cli_imports.file_format(path, None)))
    assert [row.line for row in rows] == ([2, 3, 4, 5] if name.endswith(".csv") else [1, 2, 3, 4])
    checked = [import_row(row.fields or {}) for row in rows]
    assert all(isinstance(c, ImportRowIn) for c in checked), checked
    members = [c for c in checked if isinstance(c, ImportRowIn)]
    for member in members:
        assert (
            imports.refusal(
                ImportRow(
                    1,
                    profile(member.customer_id),
                    tier=member.tier,
                    tier_since=member.tier_since,
                    points=member.points or 0,
                    points_expire_at=member.points_expire_at,
                ),
                NOW,
            )
            is None
        )
    assert [(m.customer_id, m.points, m.tier, m.consent_email, m.consent_sms) for m in members] == [
        ("m-000101", 1200, "gold", True, False),
        ("m-000102", 350, "silver", True, False),
        ("m-000103", None, None, False, True),
        ("m-000104", 80, None, False, False),
    ]
