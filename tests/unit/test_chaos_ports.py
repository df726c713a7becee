"""The chaos run's port layout (chaos/stack.py): two instances of every service and a
rebalancer per consumer, each on a port of its own inside the documented span, below the
ephemeral range, and clear of the `make up` and `make test` stacks' service ports."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from chaos.stack import CONSUMERS, SERVICE_PORT_SPAN, SERVICES, ChaosStack, Ports

EPHEMERAL_START = 32768


def all_ports(ports: Ports) -> list[int]:
    found = [port for service in SERVICES for port in ports.instances(service)]
    return found + [ports.rebalance_port(service) for service in CONSUMERS]


@given(st.integers(min_value=1024, max_value=EPHEMERAL_START - SERVICE_PORT_SPAN))
def test_every_instance_and_rebalancer_has_a_port_of_its_own_inside_the_span(base: int) -> None:
    ports = all_ports(Ports(service_base=base))
    assert len(ports) == len(set(ports)) == SERVICE_PORT_SPAN
    assert min(ports) == base and max(ports) == base + SERVICE_PORT_SPAN - 1
    assert max(ports) < EPHEMERAL_START


def test_the_default_layouts_stay_clear_of_the_other_stacks() -> None:
    make_up, make_test = set(range(8080, 8087)), set(range(18080, 18087))
    run = set(all_ports(Ports()))  # make chaos
    small = set(all_ports(Ports(service_base=18110)))  # tests/chaos
    assert run == set(range(18090, 18109)) and small == set(range(18110, 18129))
    assert not run & small and not (run | small) & (make_up | make_test)


def test_the_stack_gives_every_service_its_two_ports() -> None:
    stack = ChaosStack(Path("/nonexistent/chaos"), Ports())
    env = stack.env()
    for service in SERVICES:
        first, second = Ports().instances(service)
        assert env[f"FEDELTA_{service.upper()}_PORTS"] == f"{first},{second}"
        assert env[f"FEDELTA_{service.upper()}_WORKERS"] == "1"
    assert {t.name for t in stack.targets()} >= {"engagement:18094", "engagement:18101"}
    assert {t.name for t in stack.targets()} >= {"insights:18095", "insights:18102"}
    assert {t.name for t in stack.targets()} >= {"web:18096", "web:18103"}
