"""Read a service's consumer counters from its Prometheus `/metrics` (unauthenticated)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping

import httpx

_SAMPLE = re.compile(r"^fedelta_events_consumed_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')

# Counted while the consumer waits for its database; the message is counted again once it is
# really finished with, so it is not an outcome.
NOT_FINISHED = frozenset({"waited_for_database"})


async def consumed(http: httpx.AsyncClient, service_url: str, topic: str) -> dict[str, int]:
    """How many messages of `topic` the service's consumer has finished with, by outcome."""
    response = await http.get(f"{service_url}/metrics")
    response.raise_for_status()
    outcomes: dict[str, int] = {}
    for line in response.text.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        labels = dict(_LABEL.findall(match["labels"]))
        if labels.get("topic") == topic:
            outcome = labels.get("outcome", "?")
            outcomes[outcome] = outcomes.get(outcome, 0) + int(float(match["value"]))
    return outcomes


def finished(outcomes: Mapping[str, int]) -> int:
    """Messages finished with, whatever the outcome (applied, ignored, dead-lettered…)."""
    return sum(count for outcome, count in outcomes.items() if outcome not in NOT_FINISHED)


async def all_finished(http: httpx.AsyncClient, services: Mapping[str, str], topic: str) -> int:
    """The sum of `finished` over the services: it stops moving when none has work left."""
    counts = await asyncio.gather(*(consumed(http, url, topic) for url in services.values()))
    return sum(finished(outcomes) for outcomes in counts)


async def wait_quiet(
    http: httpx.AsyncClient,
    services: Mapping[str, str],
    topics: tuple[str, ...],
    *,
    quiet_s: float = 2.0,
    within_s: float = 300.0,
    poll_s: float = 0.25,
) -> float:
    """Waits until the services' counters of `topics` have not moved for `quiet_s`, so that an
    earlier run's backlog does not count in the next one; returns the seconds waited. Raises
    TimeoutError when they are still moving after `within_s`."""
    started = time.perf_counter()
    deadline = started + within_s
    last: tuple[int, ...] | None = None
    still_since = started
    while time.perf_counter() < deadline:
        now_counts = tuple(
            await asyncio.gather(*(all_finished(http, services, topic) for topic in topics))
        )
        now = time.perf_counter()
        if now_counts != last:
            last, still_since = now_counts, now
        elif now - still_since >= quiet_s:
            return now - started
        await asyncio.sleep(poll_s)
    raise TimeoutError(f"consumers still busy after {within_s:g} s")
