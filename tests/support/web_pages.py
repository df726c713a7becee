"""The web's pages without a database or the other services: the routers under test in an app
with the web's page errors, the signed-in person (or nobody) given, and a `FakeServices` for
the other services' APIs. For unit tests of pages; the real thing runs in tests/e2e."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
from fastapi import APIRouter, FastAPI

from services.web.api import app as web_app
from services.web.api.deps import Member, Staff, current_member, current_staff, get_services
from shared.clock import FixedClock
from shared.web.deps import get_clock
from tests.support.fakes.web import FakeServices

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
CSRF = "csrf-token-of-the-session"


def staff(role: str = "manager", username: str = "alice") -> Staff:
    return Staff(username, role, CSRF)


def member(customer_id: str = "c-1") -> Member:
    return Member(customer_id, CSRF)


@asynccontextmanager
async def pages(
    routers: Sequence[APIRouter],
    services: FakeServices,
    *,
    who: Staff | Member | None = None,
    now: datetime = NOW,
) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    for router in routers:
        app.include_router(router)
    web_app._page_errors(app)  # the real app's error pages, nothing else of it
    app.dependency_overrides[get_services] = lambda: services
    app.dependency_overrides[get_clock] = lambda: FixedClock(now)
    if isinstance(who, Staff):
        app.dependency_overrides[current_staff] = lambda: who
    if isinstance(who, Member):
        app.dependency_overrides[current_member] = lambda: who
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://web") as client:
        yield client
