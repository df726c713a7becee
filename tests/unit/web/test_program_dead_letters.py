"""The console's dead letters page: each service's dead-letter counters read from its /metrics,
by topic and reason, a service whose counters cannot be read named, and how to look at the
messages (`fedelta dlq`)."""

from __future__ import annotations

from services.web.api.routers import dead_letters
from services.web.usecases.dead_letters import counted
from tests.support.fakes.web import FakeServices
from tests.support.web_pages import pages, staff

POINTS_METRICS = """\
# HELP fedelta_dead_letters_total Messages sent to a dead-letter topic
# TYPE fedelta_dead_letters_total counter
fedelta_dead_letters_total{consumer="points",topic="fedelta.purchases.v1",error="ValueError"} 2.0
fedelta_dead_letters_total{consumer="points",topic="fedelta.tiers.v1",error="KeyError"} 0.0
# HELP fedelta_dead_letters_created Messages sent to a dead-letter topic
# TYPE fedelta_dead_letters_created gauge
fedelta_dead_letters_created{consumer="points",topic="fedelta.purchases.v1",error="E"} 1.7e9
# HELP fedelta_events_refused_total Events a consumer refused
# TYPE fedelta_events_refused_total counter
fedelta_events_refused_total{consumer="points",topic="fedelta.customers.v1",reason="source"} 1.0
"""


def test_the_counters_are_read_from_prometheus_text() -> None:
    rows = counted("points", POINTS_METRICS)
    assert [(r.topic, r.reason, r.count) for r in rows] == [
        ("fedelta.purchases.v1", "ValueError", 2),
        ("fedelta.customers.v1", "source", 1),
    ]
    assert rows[0].dlq_topic == "fedelta.purchases.v1.dlq"


async def test_the_page_shows_each_topic_and_who_could_not_be_read() -> None:
    services = FakeServices(down={"tiers"})
    services.answer("GET", "points", "/metrics", POINTS_METRICS)
    for quiet in ("ingest", "notifications", "engagement", "insights"):
        services.answer("GET", quiet, "/metrics", "# nothing dead-lettered\n")
    async with pages([dead_letters.router], services, who=staff("viewer")) as client:
        response = await client.get("/console/dead-letters")
    assert response.status_code == 200
    assert "fedelta.purchases.v1.dlq" in response.text and "ValueError" in response.text
    assert "fedelta.tiers.v1.dlq" not in response.text  # nothing counted there
    assert "Counters not readable from: tiers (" in response.text
    assert "fedelta dlq show" in response.text


async def test_nothing_dead_lettered() -> None:
    services = FakeServices()
    for service in ("ingest", "points", "tiers", "notifications", "engagement", "insights"):
        services.answer("GET", service, "/metrics", "")
    async with pages([dead_letters.router], services, who=staff("viewer")) as client:
        response = await client.get("/console/dead-letters")
    assert "No service has dead-lettered anything since it started." in response.text
    assert "not readable" not in response.text


async def test_no_all_clear_when_nothing_could_be_read() -> None:
    services = FakeServices(down={"ingest", "points", "tiers", "notifications"})
    services.answer("GET", "engagement", "/metrics", None)  # not text: no counters to read
    services.answer("GET", "insights", "/metrics", {"title": "Not found"}, status=404)
    async with pages([dead_letters.router], services, who=staff("viewer")) as client:
        response = await client.get("/console/dead-letters")
    assert response.status_code == 200 and 'role="alert"' in response.text
    assert "engagement, insights" in response.text
    assert "No service has dead-lettered anything" not in response.text
