"""Every default port lies below Linux's ephemeral range (32768-60999): a port in it can be
taken at random by an outgoing connection's source port, and a start then fails by chance."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EPHEMERAL_START = 32768
SOURCES = ["Makefile", "deploy/local/lib.sh", "deploy/local/stack.sh", "deploy/local/services.sh"]
PORT_DEFAULT = re.compile(r"PORT(?::=|:-|=)(\d+)")


@pytest.mark.parametrize("source", SOURCES)
def test_default_ports_are_below_the_ephemeral_range(source: str) -> None:
    ports = [int(port) for port in PORT_DEFAULT.findall((REPO / source).read_text())]
    assert ports, f"no port defaults found in {source}: the pattern no longer matches"
    assert all(port < EPHEMERAL_START for port in ports), (source, ports)


def test_the_test_stack_defaults_are_below_the_ephemeral_range() -> None:
    from tests.support.stack import Stack

    stack = Stack.from_env()
    for port in (stack.pg_port, stack.kafka_port, stack.kafka_controller_port, stack.smtp_port):
        assert port < EPHEMERAL_START
