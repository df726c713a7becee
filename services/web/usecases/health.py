"""The services' health for the console: each one's readiness (`/readyz`: its database and
Kafka reachable), asked at once through the gateway."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from services.web.ports import Services, ServiceUnavailable
from services.web.settings import CALLED


@dataclass(frozen=True)
class Health:
    service: str
    ready: bool


async def services_health(services: Services, actor: str) -> list[Health]:
    """Ready: `/readyz` answered 2xx; not ready: anything else, or no answer at all."""
    return list(await asyncio.gather(*(_health(services, actor, name) for name in CALLED)))


async def _health(services: Services, actor: str, service: str) -> Health:
    try:
        answer = await services.get(service, "/readyz", actor=actor)
    except ServiceUnavailable:
        return Health(service, ready=False)
    return Health(service, ready=answer.ok)
