"""Issue 19, unknown API keys: the partner directory asks the database about an unknown key
at most once per `unknown_ttl`, remembers at most MAX_UNKNOWN_KEYS of them, and looks up keys
never found at most `unknown_lookups_per_second` (then LookupsThrottled, without a lookup);
known partners are never throttled. The database is a counting stand-in here;
tests/integration/ingest/test_unknown_keys.py runs the 429 through the app."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.adapters.repositories import partner_directory
from services.ingest.adapters.repositories.partner_directory import PartnerDirectory
from services.ingest.domain.model import Partner
from services.ingest.ports import LookupsThrottled
from shared.clock import FixedClock

NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
KNOWN = Partner("bar-1", "Bar", "known-hash", "secret", NOW)


class CountingDirectory(PartnerDirectory):
    """The directory with its query answered from a dict, counting the lookups."""

    def __init__(self, clock: FixedClock, **options: object) -> None:
        super().__init__(None, clock, timedelta(seconds=5), **options)  # type: ignore[arg-type]
        self.partners = {KNOWN.api_key_hash: KNOWN}
        self.queries: list[str] = []
        self.listings = 0

    async def _key_hashes(self) -> set[str]:
        self.listings += 1
        return set(self.partners)

    async def _query(self, api_key_hash: str) -> Partner | None:
        self.queries.append(api_key_hash)
        await asyncio.sleep(0)
        return self.partners.get(api_key_hash)


def directory(clock: FixedClock, rate: float | None = 20.0) -> CountingDirectory:
    return CountingDirectory(
        clock, unknown_ttl=timedelta(seconds=5), unknown_lookups_per_second=rate
    )


async def test_an_unknown_key_costs_one_lookup_per_ttl() -> None:
    clock = FixedClock(NOW)
    partners = directory(clock)
    for _ in range(50):
        assert await partners.by_key_hash("wrong") is None
    assert partners.queries == ["wrong"]
    clock.advance(timedelta(seconds=5))
    assert await partners.by_key_hash("wrong") is None
    assert partners.queries == ["wrong", "wrong"]


async def test_concurrent_calls_with_one_unknown_key_share_one_lookup() -> None:
    partners = directory(FixedClock(NOW))
    found = await asyncio.gather(*(partners.by_key_hash("wrong") for _ in range(30)))
    assert found == [None] * 30
    assert partners.queries == ["wrong"]


async def test_a_flood_of_distinct_keys_is_throttled_without_lookups() -> None:
    clock = FixedClock(NOW)
    partners = directory(clock, rate=20.0)
    answered, throttled = 0, 0
    for n in range(1000):
        try:
            assert await partners.by_key_hash(f"random-{n}") is None
            answered += 1
        except LookupsThrottled:
            throttled += 1
    assert (answered, throttled) == (20, 980)
    assert len(partners.queries) == 20
    assert partners.listings == 1  # which keys are partners': asked once
    # A real partner gets through, never seen before and whatever the flood.
    assert await partners.by_key_hash(KNOWN.api_key_hash) == KNOWN
    clock.advance(timedelta(seconds=6))  # its entry expired: asked again, not throttled
    assert await partners.by_key_hash(KNOWN.api_key_hash) == KNOWN
    clock.advance(timedelta(milliseconds=500))  # half a second: half the bucket back
    refilled = 0
    for n in range(100):
        try:
            await partners.by_key_hash(f"later-{n}")
            refilled += 1
        except LookupsThrottled:
            break
    assert refilled == 20  # capped at one second's worth (6.5 s went by)
    assert partners.listings == 2


async def test_a_partner_provisioned_during_a_flood_is_known_at_the_next_listing() -> None:
    clock = FixedClock(NOW)
    partners = directory(clock, rate=1.0)
    late = Partner("late", "Late", "late-hash", "s", NOW)
    await partners.by_key_hash("random-0")
    with pytest.raises(LookupsThrottled):
        await partners.by_key_hash("random-1")
    partners.partners[late.api_key_hash] = late
    with pytest.raises(LookupsThrottled):
        await partners.by_key_hash(late.api_key_hash)  # the listing is a second old
    clock.advance(timedelta(seconds=5))
    for n in range(5):  # the flood goes on and takes the bucket...
        with contextlib.suppress(LookupsThrottled):
            await partners.by_key_hash(f"random-{n + 2}")
    assert await partners.by_key_hash(late.api_key_hash) == late  # ...not the partner's call


async def test_a_partner_provisioned_later_is_found_at_once() -> None:
    partners = directory(FixedClock(NOW))
    late = Partner("late", "Late", "late-hash", "s", NOW)
    assert await partners.by_key_hash("other-hash") is None
    partners.partners[late.api_key_hash] = late
    assert await partners.by_key_hash(late.api_key_hash) == late


async def test_without_an_unknown_ttl_nothing_unknown_is_remembered() -> None:
    partners = CountingDirectory(FixedClock(NOW))
    assert await partners.by_key_hash("wrong") is None
    assert await partners.by_key_hash("wrong") is None
    assert partners.queries == ["wrong", "wrong"]


async def test_the_unknown_keys_remembered_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(partner_directory, "MAX_UNKNOWN_KEYS", 10)
    partners = directory(FixedClock(NOW), rate=None)
    for n in range(25):
        await partners.by_key_hash(f"k-{n}")
    assert len(partners._unknown) == 10
    assert await partners.by_key_hash("k-24") is None
    assert partners.queries.count("k-24") == 1  # the newest stayed
    await partners.by_key_hash("k-0")
    assert partners.queries.count("k-0") == 2  # the oldest went first


@given(st.lists(st.floats(min_value=0, max_value=3), min_size=1, max_size=40))
def test_lookups_of_never_seen_keys_never_exceed_the_rate(gaps: list[float]) -> None:
    clock = FixedClock(NOW)
    partners = directory(clock, rate=5.0)
    elapsed = 0.0

    async def run() -> None:
        nonlocal elapsed
        for i, gap in enumerate(gaps):
            clock.advance(timedelta(seconds=gap))
            elapsed += gap
            for j in range(10):
                with contextlib.suppress(LookupsThrottled):
                    await partners.by_key_hash(f"k-{i}-{j}")

    asyncio.run(run())
    # A bucket of one second's worth, refilled at the rate.
    assert len(partners.queries) <= 5 + 5 * elapsed + 1e-6
