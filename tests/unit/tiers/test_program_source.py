"""Which program is in force: the configured file until a replay switches, then the program of
the newest switch, picked up without a restart, and read from the database only when the
switch's generation moves. On fakes: no database."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.tiers.adapters.program_file import (
    DEFAULT_PROGRAM_FILE,
    load_program,
    program_from_json,
    program_json,
)
from services.tiers.domain.model import (
    DowngradePolicy,
    Program,
    SpendBasis,
    TierDefinition,
)
from services.tiers.programs import ProgramSource
from tests.support.fakes.tiers import FakeSwitches

AT = datetime(2026, 11, 23, 12, tzinfo=UTC)
CONFIGURED = Program()
SILVER_AT_1000 = Program(
    tiers=(
        TierDefinition("bronze", Decimal(0)),
        TierDefinition("silver", Decimal(1000)),
        TierDefinition("gold", Decimal("2000.50")),
    )
)
CALENDAR_YEAR = Program(
    basis=SpendBasis.CALENDAR_YEAR,
    time_zone="Europe/Helsinki",
    downgrade_policy=DowngradePolicy.RECOMPUTE,
    downgrade_warning_days=14,
)


@pytest.mark.parametrize("program", [CONFIGURED, SILVER_AT_1000, CALENDAR_YEAR])
def test_the_stored_program_reads_back_as_the_very_same_program(program: Program) -> None:
    assert program_from_json(program_json(program)) == program


def test_the_shipped_program_file_round_trips_through_the_stored_text() -> None:
    shipped = load_program(DEFAULT_PROGRAM_FILE)
    assert program_from_json(program_json(shipped)) == shipped


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        program_json(CONFIGURED).replace('"UTC"', '"Mars/Olympus"'),
        program_json(CONFIGURED).replace('"currency"', '"currencies"'),
    ],
)
def test_a_stored_program_that_is_not_a_valid_program_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        program_from_json(text)


async def test_without_a_switched_replay_the_configured_program_is_in_force() -> None:
    switches = FakeSwitches()
    source = ProgramSource(CONFIGURED)
    assert await source.resolve(switches) is CONFIGURED
    assert (switches.latest_reads, switches.text_reads) == (1, [])


async def test_a_switch_is_followed_at_the_next_look_without_a_new_source() -> None:
    switches = FakeSwitches()
    source = ProgramSource(CONFIGURED)
    assert await source.resolve(switches) == CONFIGURED
    switches.switch(SILVER_AT_1000)
    assert await source.resolve(switches) == SILVER_AT_1000
    switches.switch(CALENDAR_YEAR)
    assert await source.resolve(switches) == CALENDAR_YEAR


async def test_the_program_text_is_read_only_when_the_generation_moves() -> None:
    switches = FakeSwitches()
    switches.switch(SILVER_AT_1000)
    source = ProgramSource(CONFIGURED)
    for _ in range(5):
        assert await source.resolve(switches) == SILVER_AT_1000
    assert (switches.latest_reads, switches.text_reads) == (5, [1])
    switches.switch(CALENDAR_YEAR)
    assert await source.resolve(switches) == CALENDAR_YEAR
    assert await source.resolve(switches) == CALENDAR_YEAR
    assert switches.text_reads == [1, 2]


async def test_the_newest_switch_wins_over_older_ones() -> None:
    switches = FakeSwitches()
    switches.switch(CALENDAR_YEAR)
    switches.switch(SILVER_AT_1000)
    assert await ProgramSource(CONFIGURED).resolve(switches) == SILVER_AT_1000


async def test_with_its_switches_gone_the_configured_program_is_in_force_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    switches = FakeSwitches()
    switches.switch(SILVER_AT_1000)
    source = ProgramSource(CONFIGURED)
    assert await source.resolve(switches) == SILVER_AT_1000
    switches.programs.clear()
    with caplog.at_level(logging.WARNING):
        assert await source.resolve(switches) is CONFIGURED
    assert "no switched replay" in caplog.text


async def test_a_switched_program_that_differs_from_the_file_is_named_in_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    switches = FakeSwitches()
    switches.switch(SILVER_AT_1000)
    source = ProgramSource(CONFIGURED, "/etc/fedelta/program.yaml")
    with caplog.at_level(logging.INFO):
        await source.resolve(switches)
        await source.resolve(switches)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per switch, not once per look
    message = warnings[0].getMessage()
    assert "replay-1" in message and "/etc/fedelta/program.yaml" in message
    assert "is in force, not /etc/fedelta/program.yaml" in message


async def test_a_switched_program_equal_to_the_file_is_no_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    switches = FakeSwitches()
    switches.switch(CONFIGURED)
    with caplog.at_level(logging.INFO):
        assert await ProgramSource(CONFIGURED).resolve(switches) == CONFIGURED
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert "is the same program" in caplog.text


async def test_an_unreadable_switched_program_keeps_the_one_in_force_and_is_read_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    switches = FakeSwitches()
    switches.switch(SILVER_AT_1000)
    source = ProgramSource(CONFIGURED)
    assert await source.resolve(switches) == SILVER_AT_1000
    switches.switch('{"currency": "EUR"}')
    with caplog.at_level(logging.ERROR):
        assert await source.resolve(switches) == SILVER_AT_1000
        assert await source.resolve(switches) == SILVER_AT_1000
    assert switches.text_reads == [1, 2]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "ValidationError" in errors[0].getMessage()
    assert "EUR" not in errors[0].getMessage()  # the error class, not the stored text
    # A later good switch is followed again.
    switches.switch(CALENDAR_YEAR)
    assert await source.resolve(switches) == CALENDAR_YEAR
