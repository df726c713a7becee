"""The observability files of deploy/observability/: the alert rules pass `promtool check rules`
and their unit tests (`promtool test rules`), the scrape configuration passes `promtool check
config`, and the dashboard and the rules query only metrics that
shared/observability/metrics.py defines.

promtool comes from `make test-tools` (deploy/local/tools.sh install); without it these tests fail:
a check that cannot run is not a check that passed."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.observability import metrics

REPO = Path(__file__).resolve().parents[2]
OBSERVABILITY = REPO / "deploy" / "observability"
PROMTOOL = Path(
    subprocess.run(
        [str(REPO / "deploy" / "local" / "tools.sh"), "path"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
)
METRIC = re.compile(r"\bfedelta_[a-z0-9_]+\b")
# The alerts the operators were promised (issue 10): lag, outbox age, dead letters, 5xx.
PROMISED_ALERTS = {
    "FedeltaConsumerLagHigh": "fedelta_consumer_lag",
    "FedeltaOutboxStale": "fedelta_outbox_oldest_age_seconds",
    "FedeltaDeadLetters": "fedelta_dead_letters_total",
    "FedeltaHttp5xxRate": "fedelta_http_request_seconds_count",
}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL.exists(), f"{PROMTOOL} is missing: run deploy/local/tools.sh install"
    return subprocess.run(
        [str(PROMTOOL), *args],
        cwd=OBSERVABILITY,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_alert_rules_are_valid() -> None:
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_alert_rules_pass_their_unit_tests() -> None:
    tested = promtool("test", "rules", "alerts-test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_scrape_configuration_is_valid() -> None:
    checked = promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_promtool_refuses_a_broken_rule(tmp_path: Path) -> None:
    """The checks above can fail: promtool is really looking."""
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(\n")
    assert promtool("check", "rules", str(broken)).returncode != 0


def alert_rules() -> dict[str, str]:
    document = yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())
    return {
        rule["alert"]: rule["expr"]
        for group in document["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def dashboard_queries() -> Iterator[tuple[str, str]]:
    dashboard = json.loads((OBSERVABILITY / "grafana-dashboard.json").read_text())

    def walk(panels: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
        for panel in panels:
            for target in panel.get("targets", []):
                yield panel["title"], target["expr"]
            yield from walk(panel.get("panels", []))

    yield from walk(dashboard["panels"])


def test_the_promised_alerts_exist_on_the_metrics_they_watch() -> None:
    rules = alert_rules()
    for alert, metric in PROMISED_ALERTS.items():
        assert alert in rules, f"no {alert} rule"
        assert metric in METRIC.findall(rules[alert]), f"{alert} does not watch {metric}"


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_queries_name_only_metrics_that_exist(source: str) -> None:
    defined = metrics.series_names()
    queries = list(alert_rules().items()) if source == "alerts" else list(dashboard_queries())
    assert queries
    for where, expr in queries:
        unknown = set(METRIC.findall(expr)) - defined
        assert not unknown, (
            f"{where} queries {sorted(unknown)}, not in shared/observability/metrics.py"
        )


def test_the_dashboard_shows_every_metric() -> None:
    shown = {name for _, expr in dashboard_queries() for name in METRIC.findall(expr)}
    families = {re.sub(r"_(bucket|sum|count|total)$", "", name) for name in metrics.series_names()}
    missing = {
        family
        for family in families
        if not any(name == family or name.startswith(f"{family}_") for name in shown)
    }
    assert not missing, f"metrics without a panel: {sorted(missing)}"


def test_the_dashboard_covers_what_operators_watch() -> None:
    titles = " ".join(title.lower() for title, _ in dashboard_queries())
    for topic in ("requests", "5xx", "latency", "lag", "outcome", "backlog", "oldest", "dead"):
        assert topic in titles, f"no panel about {topic}"
