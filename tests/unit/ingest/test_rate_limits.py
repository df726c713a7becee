"""Issue 19, per-partner rate limits: a token bucket per partner in each worker process, its
share of the partner's limit (the record's, or the default), refusing with the seconds to
wait; `deps.admit` turns a refusal into a 429 problem with Retry-After. The clock is injected;
tests/integration/ingest/test_rate_limits.py runs the 429 through the app."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.api.deps import admit
from services.ingest.bootstrap import rate_limits
from services.ingest.domain import rate_limits as limits_module
from services.ingest.domain.model import Partner
from services.ingest.domain.rate_limits import (
    PartnerRateLimits,
    TokenBucket,
    retry_after_seconds,
)
from services.ingest.settings import IngestSettings
from shared.clock import FixedClock
from shared.web.problems import Problem

NOW = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)


def admitted(
    limits: PartnerRateLimits, partner: str, limit: float | None, clock: FixedClock
) -> int:
    """How many calls in a row are admitted at the clock's instant."""
    count = 0
    while limits.take(partner, limit, clock.now()) == 0.0:
        count += 1
        assert count < 1_000_000
    return count


def test_a_partner_gets_a_second_of_its_share_at_once_then_its_rate() -> None:
    clock = FixedClock(NOW)
    limits = PartnerRateLimits(default_per_second=1000, processes=2)
    assert admitted(limits, "bar-1", 10, clock) == 5  # 10/s shared by two processes
    assert limits.take("bar-1", 10, clock.now()) == pytest.approx(0.2)
    clock.advance(timedelta(seconds=0.2))
    assert admitted(limits, "bar-1", 10, clock) == 1
    clock.advance(timedelta(seconds=10))  # a full bucket holds one second's worth, no more
    assert admitted(limits, "bar-1", 10, clock) == 5


def test_without_a_limit_of_its_own_a_partner_has_the_default() -> None:
    clock = FixedClock(NOW)
    limits = PartnerRateLimits(default_per_second=40, processes=4)
    assert admitted(limits, "bar-1", None, clock) == 10


def test_partners_do_not_share_a_bucket() -> None:
    clock = FixedClock(NOW)
    limits = PartnerRateLimits(default_per_second=3, processes=1)
    assert admitted(limits, "bar-1", None, clock) == 3
    assert admitted(limits, "bar-2", None, clock) == 3


def test_a_changed_limit_applies_from_the_next_call() -> None:
    clock = FixedClock(NOW)
    limits = PartnerRateLimits(default_per_second=100, processes=1)
    assert limits.take("bar-1", 100, clock.now()) == 0.0
    assert admitted(limits, "bar-1", 2, clock) == 2  # the bucket shrinks to the new size
    assert limits.take("bar-1", 2, clock.now()) == pytest.approx(0.5)


def test_a_limit_below_one_per_second_still_admits_one_call_then_waits() -> None:
    clock = FixedClock(NOW)
    limits = PartnerRateLimits(default_per_second=100, processes=1)
    assert admitted(limits, "bar-1", 0.25, clock) == 1
    wait = limits.take("bar-1", 0.25, clock.now())
    assert wait == pytest.approx(4.0)
    assert retry_after_seconds(wait) == 4


def test_the_buckets_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits_module, "MAX_BUCKETS", 3)
    clock = FixedClock(NOW)
    limits = PartnerRateLimits(default_per_second=1, processes=1)
    for partner in ("a", "b", "c", "d"):
        assert limits.take(partner, None, clock.now()) == 0.0
    assert len(limits._buckets) == 3
    assert limits.take("d", None, clock.now()) > 0  # the most recent is still there


@pytest.mark.parametrize(("wait", "header"), [(0.001, 1), (1.0, 1), (1.01, 2), (59.5, 60)])
def test_retry_after_is_whole_seconds_rounded_up(wait: float, header: int) -> None:
    assert retry_after_seconds(wait) == header


def test_a_rate_limit_is_positive_and_shared_by_a_process_at_least() -> None:
    with pytest.raises(ValueError, match="positive"):
        PartnerRateLimits(default_per_second=0, processes=1)
    with pytest.raises(ValueError, match="positive"):
        PartnerRateLimits(default_per_second=1, processes=0)


@given(
    rate=st.floats(min_value=0.1, max_value=1000),
    gaps=st.lists(st.floats(min_value=0, max_value=2), min_size=1, max_size=200),
)
def test_a_bucket_never_admits_more_than_its_capacity_plus_its_rate_over_time(
    rate: float, gaps: list[float]
) -> None:
    bucket = TokenBucket(rate=rate, tokens=max(rate, 1.0), refilled=NOW)
    now, taken = NOW, 0
    for gap in gaps:
        now += timedelta(seconds=gap)
        wait = bucket.take(now)
        assert wait >= 0
        taken += wait == 0.0
        elapsed = (now - NOW).total_seconds()
        assert taken <= bucket.capacity + rate * elapsed + 1e-6


@given(rate=st.floats(min_value=0.1, max_value=1000), calls=st.integers(1, 50))
def test_after_the_wait_it_names_a_call_is_admitted(rate: float, calls: int) -> None:
    bucket = TokenBucket(rate=rate, tokens=max(rate, 1.0), refilled=NOW)
    now = NOW
    for _ in range(calls):
        wait = bucket.take(now)
        if wait > 0:
            now += timedelta(seconds=wait * (1 + 1e-9) + 1e-6)
            assert bucket.take(now) == 0.0


PARTNER = Partner("bar-1", "Bar", "h", "s", NOW, rate_limit_per_second=1)


def test_admit_answers_429_with_retry_after_past_the_limit() -> None:
    limits = PartnerRateLimits(default_per_second=1000, processes=1)
    admit(limits, PARTNER, NOW)  # the one call of this second
    with pytest.raises(Problem) as refused:
        admit(limits, PARTNER, NOW + timedelta(seconds=0.5))
    assert refused.value.status == 429
    assert refused.value.slug == "rate-limited"
    assert refused.value.extra == {"headers": {"Retry-After": "1"}}
    admit(limits, PARTNER, NOW + timedelta(seconds=1))


SETTINGS = {
    "database_url": "postgresql+asyncpg://u:p@localhost/db",
    "kafka_bootstrap_servers": "localhost:9092",
    "admin_token_sha256": "0" * 64,
}


def test_each_worker_process_takes_its_share_of_the_default() -> None:
    settings = IngestSettings(**SETTINGS, workers=4, partner_rate_limit_per_second=100)  # type: ignore[arg-type]
    assert rate_limits(settings).per_process(None) == 25
    assert rate_limits(settings).per_process(8) == 2


def test_the_default_does_not_limit_the_ingest_benchmark() -> None:
    """bench.ingest_throughput sends ~3,500 purchases/s from one partner (bench/README.md):
    below each process's share of the default, however the calls spread over the processes."""
    default = IngestSettings(**SETTINGS)  # type: ignore[arg-type]
    assert rate_limits(default).per_process(None) >= 3_500
