"""In-memory stand-ins for the web's ports: the other services' APIs (canned answers by method
and path, every call recorded with its actor) — typed against `services.web.ports.Services`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.web.ports import Answer, ServiceUnavailable


@dataclass(frozen=True)
class Call:
    method: str
    service: str
    path: str
    actor: str
    params: Mapping[str, str] | None = None
    body: Mapping[str, Any] | None = None
    idempotency_key: str | None = None


@dataclass
class FakeServices:
    """`answers[(method, service, path pattern)]` is what a call gets (the pattern a regular
    expression matched in full against the path); a call nobody answered is a 404; a service
    in `down` is unavailable."""

    answers: dict[tuple[str, str, str], Answer] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    calls: list[Call] = field(default_factory=list)

    def answer(self, method: str, service: str, path: str, body: Any, status: int = 200) -> None:
        self.answers[(method, service, path)] = Answer(status, body)

    async def get(
        self, service: str, path: str, *, actor: str, params: Mapping[str, str] | None = None
    ) -> Answer:
        self.calls.append(Call("GET", service, path, actor, params=params))
        return self._answer("GET", service, path)

    async def send(
        self,
        method: str,
        service: str,
        path: str,
        *,
        actor: str,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Answer:
        self.calls.append(
            Call(method, service, path, actor, body=body, idempotency_key=idempotency_key)
        )
        return self._answer(method, service, path)

    def _answer(self, method: str, service: str, path: str) -> Answer:
        if service in self.down:
            raise ServiceUnavailable(service)
        for (m, s, pattern), answer in self.answers.items():
            if m == method and s == service and re.fullmatch(pattern, path):
                return answer
        return Answer(404, {"title": "Not found"})

    def sent(self, method: str, service: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.service == service]
