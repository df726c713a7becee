"""The settlement's netting: pairs of different parties valued at point_value, each party's
position, nets adding up to exactly zero; the period's bounds; the liability's honoured
points."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.points.adapters.program_file import DEFAULT_PROGRAM_FILE, ProgramError, load_program
from services.points.domain.liability import Liability, total_of, with_honoured
from services.points.domain.settlement import PROGRAM, Pair, period_flaw, settle

PARTIES = st.sampled_from([None, "a", "b", "c", "d"])


def test_the_issuer_owes_the_honourer_the_points_spent_at_its_value() -> None:
    settlement = settle(
        {("a", "b"): 1000, ("b", "a"): 250, ("a", "a"): 999, (None, "b"): 100},
        Decimal("0.01"),
    )

    assert settlement.pairs == [
        Pair("a", "b", 1000, Decimal("10.00")),
        Pair("b", "a", 250, Decimal("2.50")),
        Pair(PROGRAM, "b", 100, Decimal("1.00")),
    ]
    positions = {p.partner_id: (p.owes, p.is_owed, p.net) for p in settlement.partners}
    assert positions == {
        "a": (Decimal("10.00"), Decimal("2.50"), Decimal("-7.50")),
        "b": (Decimal("2.50"), Decimal("11.00"), Decimal("8.50")),
        PROGRAM: (Decimal("1.00"), Decimal(0), Decimal("-1.00")),
    }


def test_nothing_spent_between_partners_settles_nothing() -> None:
    settlement = settle({("a", "a"): 10, ("a", "b"): 0}, Decimal("0.01"))
    assert (settlement.pairs, settlement.partners) == ([], [])


@given(
    spent=st.dictionaries(
        st.tuples(PARTIES, PARTIES), st.integers(min_value=-(10**9), max_value=10**9), max_size=20
    ),
    point_value=st.decimals(
        min_value=Decimal("0.000001"), max_value=Decimal(1000), places=6, allow_nan=False
    ),
)
def test_the_nets_add_up_to_exactly_zero_and_the_pairs_to_the_positions(
    spent: dict[tuple[str | None, str | None], int], point_value: Decimal
) -> None:
    settlement = settle(spent, point_value)

    assert sum((p.net for p in settlement.partners), Decimal(0)) == 0
    for pair in settlement.pairs:
        assert pair.issued_by != pair.honoured_by
        assert pair.points != 0
        assert pair.value == pair.points * point_value
    for position in settlement.partners:
        assert position.owes == sum(
            (p.value for p in settlement.pairs if p.issued_by == position.partner_id), Decimal(0)
        )
        assert position.is_owed == sum(
            (p.value for p in settlement.pairs if p.honoured_by == position.partner_id),
            Decimal(0),
        )
    expected = {
        (PROGRAM if i is None else i, PROGRAM if h is None else h)
        for (i, h), n in spent.items()
        if (i or PROGRAM) != (h or PROGRAM)
    }
    assert {(p.issued_by, p.honoured_by) for p in settlement.pairs} <= expected


def test_a_period_is_from_before_to_and_at_most_a_year_long() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)

    assert period_flaw(start, start + timedelta(days=31)) is None
    assert period_flaw(start, start + timedelta(days=366)) is None
    assert period_flaw(start, start) == "from must be before to"
    assert period_flaw(start, start - timedelta(seconds=1)) == "from must be before to"
    assert period_flaw(start, start + timedelta(days=367)) == "a period is at most 366 days"


def test_the_liability_names_what_each_partner_honoured_beside_what_it_issued() -> None:
    issued = [Liability("a", 500, 120, 30, 50, debt=40), Liability("b", 100, 10, 0, 0)]

    partners = with_honoured(issued, {"b": 70, "c": 20, None: 5})

    assert [(p.partner_id, p.issued, p.honoured) for p in partners] == [
        ("a", 500, 0),
        ("b", 100, 70),
        ("c", 0, 20),
        (PROGRAM, 0, 5),
    ]
    assert total_of(partners).honoured == 95
    assert partners[0].outstanding == 260  # what it already reported is unchanged


@pytest.mark.parametrize(
    ("value", "ok"), [('"0.05"', True), ('"0"', False), ('"0.0000001"', False)]
)
def test_point_value_is_read_from_the_program_file(tmp_path: Path, value: str, ok: bool) -> None:
    shipped = DEFAULT_PROGRAM_FILE.read_text()
    assert 'point_value: "0.01"' in shipped
    path = tmp_path / "program.yaml"
    path.write_text(shipped.replace('point_value: "0.01"', f"point_value: {value}"))
    if ok:
        assert load_program(path).point_value == Decimal("0.05")
    else:
        with pytest.raises(ProgramError, match=r"program\.yaml: point_value: "):
            load_program(path)
