"""The FastAPI dependencies of every service: its runtime, settings, clock, a read connection,
and the token scopes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import Clock
from shared.runtime.process import Runtime
from shared.settings import ServiceSettings
from shared.web.auth import Scope as TokenScope
from shared.web.auth import bearer_token, token_scope
from shared.web.problems import Problem


# The dependencies below are coroutines although they do not wait for anything: FastAPI runs
# a plain `def` dependency on a worker thread, a hop that costs more than the function.
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_settings(request: Request) -> ServiceSettings:
    settings: ServiceSettings = request.app.state.settings
    return settings


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]


async def get_clock(runtime: RuntimeDep) -> Clock:
    return runtime.clock


async def get_connection(runtime: RuntimeDep) -> AsyncIterator[AsyncConnection]:
    """A connection for reads. A call that changes state opens its own transaction in its use
    case (`in_transaction` or `run_keyed`) and commits it before it answers, so that what the
    client is told was accepted is already durable."""
    async with runtime.engine.connect() as conn:
        yield conn


ClockDep = Annotated[Clock, Depends(get_clock)]
ConnectionDep = Annotated[AsyncConnection, Depends(get_connection)]


def require_scope(needed: TokenScope) -> Callable[..., Awaitable[TokenScope]]:
    async def check(
        settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
    ) -> TokenScope:
        token = bearer_token(authorization)
        if token is None:
            raise Problem(
                401,
                "Unauthorized",
                "send Authorization: Bearer <service token>",
                slug="unauthorized",
            )
        scope = token_scope(token, settings.admin_token, settings.read_token)
        if scope is None:
            raise Problem(401, "Unauthorized", "unknown service token", slug="unauthorized")
        if needed == "admin" and scope != "admin":
            raise Problem(403, "Forbidden", "this call needs the admin scope", slug="forbidden")
        return scope

    return check


ReadScope = Annotated[TokenScope, Depends(require_scope("read"))]
AdminScope = Annotated[TokenScope, Depends(require_scope("admin"))]
