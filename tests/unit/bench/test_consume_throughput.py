"""The consumer benchmark's own logic: its history (earlier purchases per member, spread over
past days), its arguments, and how it reads the newest ledger entries of a member with a
long history (httpx's MockTransport stands in for points)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bench import consume_throughput as bench
from fedelta_client import StackClient
from shared.messaging.events import CloudEvent, PurchaseCompleted
from tests.support.devenv import FAKE_DEV_ENV

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
ENV = FAKE_DEV_ENV


def test_history_gives_every_customer_its_purchases_on_past_days_below_the_velocity_guard() -> None:
    customers = ["a", "b", "c"]
    history = bench.purchases(
        customers, 3 * 600, "r1", NOW, label=bench.HISTORY_LABEL, first=0, spread_days=300
    )
    parsed = [CloudEvent.from_bytes(value) for _, value in history.records]
    bought = [event.data_as(PurchaseCompleted) for event in parsed]
    assert Counter(p.customer_id for p in bought) == {"a": 600, "b": 600, "c": 600}
    assert all(p.purchase_id.startswith("bench-ct-r1-h") for p in bought)
    days = Counter((p.customer_id, p.occurred_at.date()) for p in bought)
    # 600 purchases over 300 past days: two a day each, none today or in the future.
    assert set(days.values()) == {2}
    assert min(p.occurred_at for p in bought) == NOW - timedelta(days=300)
    assert max(p.occurred_at for p in bought) == NOW - timedelta(days=1)
    assert sum(history.totals.values()) == sum(p.total for p in bought)


def test_chunks_of_history_number_on_and_timed_purchases_are_made_now() -> None:
    first = bench.purchases(["a", "b"], 4, "r1", NOW, label="h", first=0, spread_days=10)
    second = bench.purchases(["a", "b"], 4, "r1", NOW, label="h", first=4, spread_days=10)
    ids = first.purchase_ids["a"] | first.purchase_ids["b"]
    assert ids.isdisjoint(second.purchase_ids["a"] | second.purchase_ids["b"])
    timed = bench.purchases(["a", "b"], 4, "r1", NOW)
    assert timed.purchase_ids["a"] == {"bench-ct-r1-0", "bench-ct-r1-2"}
    events = [CloudEvent.from_bytes(value) for _, value in timed.records]
    assert {e.data_as(PurchaseCompleted).occurred_at for e in events} == {NOW}


def test_history_must_not_be_negative() -> None:
    with pytest.raises(SystemExit):
        bench.main(["--history", "-1"])


async def test_the_newest_entries_are_read_page_by_page_down_to_the_history() -> None:
    timed = bench.purchases(["m"], 3, "r1", NOW)
    # Newest first: the three timed purchases over two pages, then history and the welcome.
    pages: dict[str | None, tuple[list[str | None], str | None]] = {
        None: (["bench-ct-r1-2", "bench-ct-r1-1"], "7"),
        "7": (["bench-ct-r1-0", "bench-ct-r1-h9"], "5"),
        "5": ([None], None),
    }
    asked: list[str | None] = []

    def points(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        asked.append(cursor)
        ids, next_cursor = pages[cursor]
        entries = [{"purchase_id": i, "kind": "earn"} for i in ids]
        body = {"entries": entries, "next_cursor": next_cursor}
        return httpx.Response(200, content=json.dumps(body))

    async with httpx.AsyncClient(transport=httpx.MockTransport(points)) as http:
        found, status = await bench.newest_purchase_entries(StackClient(ENV, http), "m", timed)
    assert status == 200
    assert sorted(found) == sorted((i, "earn") for i in timed.purchase_ids["m"])
    assert asked == [None, "7"]  # stops at the first history entry
