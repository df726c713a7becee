"""The program file: the shipped one loads as the default program, malformed ones are refused."""

from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from services.tiers.adapters.program_file import DEFAULT_PROGRAM_FILE, load_program
from services.tiers.domain.model import DowngradePolicy, Program, SpendBasis


def test_the_shipped_program_is_the_default_program() -> None:
    program = load_program()
    assert program == Program()
    assert [(t.name, t.threshold) for t in program.tiers] == [
        ("bronze", Decimal(0)),
        ("silver", Decimal(500)),
        ("gold", Decimal(2000)),
        ("platinum", Decimal(5000)),
    ]
    assert program.basis is SpendBasis.ROLLING
    assert program.downgrade_policy is DowngradePolicy.ONE_DOWN


def write_variant(tmp_path: Path, **changes: object) -> Path:
    document = yaml.safe_load(DEFAULT_PROGRAM_FILE.read_text())
    document.update(changes)
    path = tmp_path / "program.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_the_alternative_policies_load(tmp_path: Path) -> None:
    program = load_program(
        write_variant(
            tmp_path,
            basis="calendar_year",
            downgrade_policy="recompute",
            time_zone="Europe/Helsinki",
        )
    )
    assert program.basis is SpendBasis.CALENDAR_YEAR
    assert program.time_zone == "Europe/Helsinki"
    assert program.downgrade_policy is DowngradePolicy.RECOMPUTE


@pytest.mark.parametrize(
    "changes",
    [
        {"basis": "lifetime"},
        {"downgrade_policy": "two_down"},
        {"qualifying_window_days": 0},
        {"tiers": [{"name": "diamond", "threshold": "0"}]},
        {"tiers": [{"name": "bronze", "threshold": "0.001"}]},
        {"tiers": []},
        {"surprise": 1},
        {"time_zone": "Mars/Olympus_Mons"},
    ],
)
def test_a_malformed_program_is_refused(tmp_path: Path, changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        load_program(write_variant(tmp_path, **changes))


def test_tiers_out_of_order_are_refused(tmp_path: Path) -> None:
    tiers = [{"name": "bronze", "threshold": "0"}, {"name": "silver", "threshold": "0"}]
    with pytest.raises(ValueError, match="rise strictly"):
        load_program(write_variant(tmp_path, tiers=tiers))


def test_an_unknown_time_zone_is_refused_by_its_field_name(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="time_zone"):
        load_program(write_variant(tmp_path, time_zone="Europe/Atlantis"))
