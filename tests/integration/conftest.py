"""What every integration test shares: the test stack (the `stack` fixture, in tests/conftest.py
because the end-to-end tests start their services on it too), the helpers of tests/support/
(`database.engine_for`, `services.running`, `kafka`, `polling`, `factories`), and the
`integration` mark, given here to every test under this directory so that no module can
forget it. Each directory (core/, ingest/, points/, tiers/, notifications/) has a conftest.py of
the fixtures its modules share."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.stack import Stack

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def sealing_keys(stack: Stack) -> None:
    """Partners' and webhooks' secrets are stored sealed: the adapters open them with the
    keys the in-process services install, from the first test on."""
    stack.install_keyrings()
