"""Every Prometheus metric the shared runtime exports, in one place, so that the dashboard and
the alert rules (deploy/observability/) can be checked against the names defined here.

Each service process serves them on `GET /metrics`. The scrape configuration labels each target
with its `service` (deploy/observability/prometheus.yml), so a consumer's metrics name it
`consumer` and a job's `job_name`: `service` and `job` would clash with the target's labels.
Label values are bounded: route templates (never raw paths), event types the contract knows
(anything else is `unknown`), error classes, job and topic names. Counters are moved once per
batch with `inc(n)`, not once per event.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# -- HTTP -------------------------------------------------------------------------------------

# Its `_count` is the request counter (rate by status for errors), its buckets the latency.
HTTP_REQUEST_SECONDS = Histogram(
    "fedelta_http_request_seconds",
    "HTTP requests by method, route template and status, with their latency",
    ["method", "route", "status"],
)

# -- consumers --------------------------------------------------------------------------------

# Outcomes: applied, duplicate (already in the inbox), dead_lettered, skipped (a type the
# service does not use, a type from a newer producer, a tombstone).
EVENTS_CONSUMED = Counter(
    "fedelta_events_consumed_total",
    "Messages the consumer finished with, by topic, event type and outcome",
    ["consumer", "topic", "type", "outcome"],
)
CONSUMER_DATABASE_WAITS = Counter(
    "fedelta_consumer_database_waits_total",
    "Times a batch waited for its database to come back (not an outcome: it is applied later)",
    ["consumer", "topic"],
)
CONSUMER_BATCH_SECONDS = Histogram(
    "fedelta_consumer_batch_seconds",
    "Time to apply one poll's events and commit their offsets",
    ["consumer"],
)
CONSUMER_HANDLER_SECONDS = Histogram(
    "fedelta_consumer_handler_seconds",
    "Time the service's batch handler took to apply the new events of one transaction",
    ["consumer"],
)
CONSUMER_BATCH_EVENTS = Histogram(
    "fedelta_consumer_batch_events",
    "Records per poll",
    ["consumer"],
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000),
)
CONSUMER_LAG = Gauge(
    "fedelta_consumer_lag",
    "Records on the partition not yet applied by this consumer (highwater minus position)",
    ["consumer", "topic", "partition"],
)
DEAD_LETTERS = Counter(
    "fedelta_dead_letters_total",
    "Messages sent to a dead-letter topic, by original topic and error class",
    ["consumer", "topic", "error"],
)
# Events refused because their `source` is not the producer that owns their topic (dead-lettered
# with the reason as the error class): shared.messaging.provenance.
EVENTS_REFUSED = Counter(
    "fedelta_events_refused_total",
    "Events a consumer refused (and dead-lettered) for where they came from, by topic and reason",
    ["consumer", "topic", "reason"],
)

# -- outbox -----------------------------------------------------------------------------------

OUTBOX_PUBLISHED = Counter(
    "fedelta_outbox_published_total", "Events the outbox relay published", ["topic"]
)
OUTBOX_BACKLOG = Gauge(
    "fedelta_outbox_backlog",
    "Rows waiting in the outbox after the relay's last cycle (from the ids: an upper bound)",
    ["table"],
)
OUTBOX_OLDEST_AGE_SECONDS = Gauge(
    "fedelta_outbox_oldest_age_seconds",
    "Age of the oldest unpublished outbox row after the relay's last cycle (0 when empty)",
    ["table"],
)

# -- the program ------------------------------------------------------------------------------

# Points as tender: a purchase naming a redemption that cannot pay for it (unknown, another
# customer's, a reward's, or named by another purchase) is applied without the link.
TENDER_LINKS_REFUSED = Counter(
    "fedelta_points_tender_links_refused_total",
    "Purchases whose redemption_id was not linked to them, by reason",
    ["reason"],
)

# -- jobs and workers -------------------------------------------------------------------------

# `job_name`, not `job`: Prometheus's own `job` label names the scrape job.

JOB_RUNS = Counter(
    "fedelta_job_runs_total",
    "Job runs by job and outcome (done, failed, busy)",
    ["job_name", "outcome"],
)
JOB_SECONDS = Histogram(
    "fedelta_job_seconds",
    "Duration of the job runs this instance did",
    ["job_name"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900),
)
JOB_LAST_SUCCESS = Gauge(
    "fedelta_job_last_success_timestamp_seconds",
    "Unix time at which the job last finished without error on this instance",
    ["job_name"],
)
WORKER_RESTARTS = Counter(
    "fedelta_worker_restarts_total", "Background workers restarted after a failure", ["worker"]
)
# Ingest's periodic write to every partition of the compacted topics, which rolls a quiet
# partition's segment so that the erasure deadline holds there (services/ingest/adapters/
# quiet_partitions.py): older than the compaction lag, an erased profile may outlive it.
QUIET_PARTITIONS_WRITTEN = Gauge(
    "fedelta_quiet_partitions_written_timestamp_seconds",
    "Unix time at which this process last wrote a reserved key's tombstone to every partition "
    "of the topic",
    ["topic"],
)

_ALL = (
    HTTP_REQUEST_SECONDS,
    EVENTS_CONSUMED,
    CONSUMER_DATABASE_WAITS,
    CONSUMER_BATCH_SECONDS,
    CONSUMER_HANDLER_SECONDS,
    CONSUMER_BATCH_EVENTS,
    CONSUMER_LAG,
    DEAD_LETTERS,
    EVENTS_REFUSED,
    OUTBOX_PUBLISHED,
    OUTBOX_BACKLOG,
    OUTBOX_OLDEST_AGE_SECONDS,
    TENDER_LINKS_REFUSED,
    JOB_RUNS,
    JOB_SECONDS,
    JOB_LAST_SUCCESS,
    WORKER_RESTARTS,
    QUIET_PARTITIONS_WRITTEN,
)
_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
}


def series_names() -> frozenset[str]:
    """The names of the series the metrics above expose (a counter's `_total`, a
    histogram's `_bucket`, `_sum` and `_count`): what a query may refer to."""
    return frozenset(
        f"{family.name}{suffix}"
        for metric in _ALL
        for family in metric.describe()
        for suffix in _SUFFIXES[family.type]
    )
