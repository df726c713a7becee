"""program.yaml is refused at start with an error that names the bad field."""

from pathlib import Path

import pytest

from services.points.adapters.program_file import DEFAULT_PROGRAM_FILE, ProgramError, load_program
from services.points.domain.model import Program


def test_the_shipped_file_is_the_default_program() -> None:
    assert load_program(DEFAULT_PROGRAM_FILE) == Program()


@pytest.mark.parametrize(
    ("line", "bad", "field"),
    [
        ("currency: EUR", "currency: euro", "currency"),
        ("welcome_bonus: 100", "welcome_bonus: -5", "welcome_bonus"),
        ("pending_days: 0", "pending_days: many", "pending_days"),
        ("validity_months: 12", "validity_months: 0", "validity_months"),
        ("hold_timeout_minutes: 15", "hold_timeout_minutes: 0", "hold_timeout_minutes"),
        ("expiry_warning_days: 30", "expiry_warning_days: 0", "expiry_warning_days"),
        ('points_per_unit: "1"', 'points_per_unit: "0"', "points_per_unit"),
        ('silver: "1.25"', 'silver: "7"', "tier_multipliers.silver"),
        ('gold: "1.5"', 'gold: "0.5"', "tier_multipliers.gold"),
        ("referral_bonus: 200", "referral_bonus: -1", "referral_bonus"),
        ("max_points_per_day: 5000", "max_points_per_day: -1", "max_points_per_day"),
        ('referral_min_purchase: "10.00"', "referral_min_purchase: -1", "referral_min_purchase"),
        ("refund_policy: unlimited", "refund_policy: never", "refund_policy"),
        ("time_zone: UTC", "time_zone: Mars/Olympus", "time_zone"),
    ],
)
def test_a_bad_number_is_named_in_the_error(
    tmp_path: Path, line: str, bad: str, field: str
) -> None:
    shipped = DEFAULT_PROGRAM_FILE.read_text()
    assert line in shipped
    broken = tmp_path / "program.yaml"
    broken.write_text(shipped.replace(line, bad))
    with pytest.raises(ProgramError, match=rf"program\.yaml: {field}: "):
        load_program(broken)


def test_an_unknown_or_missing_field_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "program.yaml"
    broken.write_text(DEFAULT_PROGRAM_FILE.read_text() + "welcome_bonuss: 3\n")
    with pytest.raises(ProgramError, match="welcome_bonuss"):
        load_program(broken)
    broken.write_text(DEFAULT_PROGRAM_FILE.read_text().replace("currency: EUR\n", ""))
    with pytest.raises(ProgramError, match="currency: Field required"):
        load_program(broken)


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "program.yaml"
    broken.write_text("- just\n- a list\n")
    with pytest.raises(ProgramError, match="must be a mapping"):
        load_program(broken)
    broken.write_text("currency: [unclosed\n")
    with pytest.raises(ProgramError, match="cannot be read as YAML"):
        load_program(broken)
