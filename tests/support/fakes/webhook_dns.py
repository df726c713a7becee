"""A resolver for webhook hosts (`adapters/webhook_addresses.Resolve`) answering from a table,
for tests: what each name resolves to, in turn (the last answer stays), so that a name can
resolve to a public address first and to a private one later (DNS rebinding)."""

from __future__ import annotations

import ipaddress

from services.notifications.adapters.webhook_addresses import (
    Resolve,
    WebhookGuard,
    WebhookUnresolved,
)
from services.notifications.domain.webhook_urls import IpAddress

# A documentation-free public address (one of example.com's): a stand-in partner's.
PUBLIC = "93.184.215.14"


class FakeResolver:
    def __init__(self, answers: dict[str, list[list[str]]] | None = None) -> None:
        self.answers = answers or {}
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[IpAddress]:
        self.asked.append((host, port))
        turns = self.answers.get(host)
        if not turns:
            raise WebhookUnresolved(host)
        answer = turns.pop(0) if len(turns) > 1 else turns[0]
        return [ipaddress.ip_address(text) for text in answer]


def public_guard(*hosts: str) -> WebhookGuard:
    """A guard whose resolver answers a public address for each of `hosts`."""
    return WebhookGuard(resolve=FakeResolver({host: [[PUBLIC]] for host in hosts}))


def _resolve(fake: FakeResolver) -> Resolve:
    return fake  # mypy checks here that the fake is a resolver
