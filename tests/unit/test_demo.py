"""The demo's customer lives where it is daytime, so its emails are not held for quiet hours."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from fedelta_cli.demo import time_zone_in_daytime


@pytest.mark.parametrize(
    "day", [datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 7, 15, tzinfo=UTC)]
)
def test_whatever_the_hour_the_demo_finds_a_time_zone_in_daytime(day: datetime) -> None:
    for minutes in range(0, 24 * 60, 20):
        now = day + timedelta(minutes=minutes)
        local = now.astimezone(ZoneInfo(time_zone_in_daytime(now)))
        assert 9 <= local.hour < 19, (now, local)
