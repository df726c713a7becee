"""Read a service's consumer counters from its Prometheus `/metrics` (unauthenticated)."""

from __future__ import annotations

import re

import httpx

_SAMPLE = re.compile(r"^fedelta_events_consumed_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


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
