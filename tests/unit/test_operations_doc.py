"""The operator's guide (docs/operations.md) lists every setting a service reads, under the
name it is read by, and the README points to the guide."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.settings import ServiceSettings
from tests.support.service_settings import SETTINGS_CLASSES, default_port, settings_of

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs/operations.md"
COMMON = set(ServiceSettings.model_fields)


@pytest.fixture(scope="module")
def guide() -> str:
    return GUIDE.read_text()


@pytest.mark.parametrize("service", list(SETTINGS_CLASSES))
def test_every_setting_of_a_service_is_in_the_guide(guide: str, service: str) -> None:
    missing = []
    for setting in settings_of(service):
        if setting.field in COMMON:
            # Listed once for every service, as FEDELTA_<NAME>_…
            name = f"`FEDELTA_<NAME>_{setting.field.upper()}`"
        else:
            name = f"`{setting.env}`"
        if name not in guide:
            missing.append(name)
    assert not missing, f"docs/operations.md does not list {missing}"


def test_the_guide_lists_no_setting_that_does_not_exist(guide: str) -> None:
    known = {s.env for service in SETTINGS_CLASSES for s in settings_of(service)}
    known |= {f"FEDELTA_<NAME>_{field.upper()}" for field in COMMON}
    prefixes = tuple(f"FEDELTA_{service.upper()}_" for service in SETTINGS_CLASSES)
    mentioned = set(re.findall(r"`(FEDELTA_(?:<NAME>|[A-Z]+)_[A-Z0-9_]+)`", guide))
    settings_like = {name for name in mentioned if name.startswith((*prefixes, "FEDELTA_<NAME>_"))}
    assert settings_like - known == set()


def test_the_guide_gives_each_service_its_port(guide: str) -> None:
    for service in SETTINGS_CLASSES:
        port = default_port(service)
        assert re.search(rf"^\| {service} \| {port} \| {port} \|", guide, re.MULTILINE), service


def test_the_guide_covers_what_an_operator_needs(guide: str) -> None:
    headings = set(re.findall(r"^## (.+)$", guide, re.MULTILINE))
    for needed in (
        "Configuration",
        "Ports",
        "Metrics and alerts",
        "Dead letters and replay",
        "Backup and restore",
        "Scaling out",
        "Upgrading with migrations",
        "Topics",
    ):
        assert needed in headings, needed


def test_the_readme_points_to_the_guide() -> None:
    assert "docs/operations.md" in (REPO / "README.md").read_text()


def test_the_metrics_and_alerts_the_guide_names_exist(guide: str) -> None:
    from shared.observability.metrics import series_names

    series = series_names()
    databases = {f"fedelta_{service}" for service in SETTINGS_CLASSES}
    named = set(re.findall(r"`(fedelta_[a-z_]+)`", guide)) - databases
    assert named, "the guide names no metric"
    unknown = {n for n in named if not any(s == n or s.startswith(f"{n}_") for s in series)}
    assert not unknown, (
        f"docs/operations.md names metrics that shared.observability.metrics lacks: {unknown}"
    )
    rules = (REPO / "deploy/observability/alerts.yml").read_text()
    alerts = set(re.findall(r"^\s*- alert: (\w+)$", rules, re.MULTILINE))
    assert alerts, "no alert found in deploy/observability/alerts.yml"
    missing = {alert for alert in alerts if f"`{alert}`" not in guide}
    assert not missing, f"docs/operations.md does not say what to do about {missing}"
    documented = set(re.findall(r"`(Fedelta[A-Za-z0-9]+)`", guide))
    assert documented <= alerts, f"no such alert: {documented - alerts}"
