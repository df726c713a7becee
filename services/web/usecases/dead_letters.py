"""What is on the dead-letter topics, as far as the web can see. The web has no right to read
Kafka (its principal reads no topic) and no service serves dead letters over HTTP, so the page
shows each service's counters of what its consumers dead-lettered —
`fedelta_dead_letters_total` by topic and error class, and `fedelta_events_refused_total` by
topic and reason (shared/observability/metrics.py) — read from its `/metrics`, and tells how
to look at the messages themselves (`fedelta dlq list`, `fedelta dlq show`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from services.web.ports import Services, ServiceUnavailable
from services.web.settings import CALLED

COUNTERS = {
    "fedelta_dead_letters": "error",
    "fedelta_events_refused": "reason",
}
MAX_METRICS_TEXT = 2_000_000  # a page of metrics is tens of kilobytes
MAX_ROWS = 500


@dataclass(frozen=True)
class DeadLetterRow:
    service: str
    consumer: str
    topic: str
    reason: str
    count: int

    @property
    def dlq_topic(self) -> str:
        return f"{self.topic}.dlq"


@dataclass(frozen=True)
class DeadLetters:
    rows: list[DeadLetterRow] = field(default_factory=list)
    # Services whose counters could not be read (down, or /metrics not on their API port).
    unread: list[str] = field(default_factory=list)


def counted(service: str, text: str) -> list[DeadLetterRow]:
    """The non-zero dead-letter counters in a service's Prometheus text."""
    rows: list[DeadLetterRow] = []
    for family in text_string_to_metric_families(text[:MAX_METRICS_TEXT]):
        reason_label = COUNTERS.get(family.name)
        if reason_label is None:
            continue
        for sample in family.samples:
            if not sample.name.endswith("_total") or sample.value <= 0:
                continue
            labels = sample.labels
            rows.append(
                DeadLetterRow(
                    service,
                    labels.get("consumer", ""),
                    labels.get("topic", ""),
                    labels.get(reason_label, ""),
                    int(sample.value),
                )
            )
    return rows


async def dead_letters(services: Services, actor: str) -> DeadLetters:
    rows: list[DeadLetterRow] = []
    unread: list[str] = []
    for service in CALLED:
        try:
            answer = await services.get(service, "/metrics", actor=actor)
        except ServiceUnavailable:
            unread.append(service)
            continue
        if not answer.ok or not isinstance(answer.body, str):
            unread.append(service)
            continue
        try:
            rows.extend(counted(service, answer.body))
        except ValueError:
            unread.append(service)
    rows.sort(key=lambda row: (row.topic, row.service, row.reason))
    return DeadLetters(rows[:MAX_ROWS], unread)
