"""The FastAPI dependencies of every service: its runtime, settings, clock, a read connection,
the token scopes (`read` < `operate` < `admin`, the service's own credentials, and `till`),
the credential's actor (for the console's credential, the person its Fedelta-Actor header
names), and the caller (the till scope: a partner's till, through ingest)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.bounds import IDENTIFIER_PATTERN, MAX_ID_LENGTH
from shared.clock import Clock
from shared.runtime.process import Runtime
from shared.settings import ServiceSettings
from shared.storage.transactions import read_snapshot
from shared.web.auth import ACTOR_HEADER, ActorError, Credential, Role, bearer_token, credential_of
from shared.web.auth import Scope as TokenScope
from shared.web.idempotency import PARTNER_HEADER
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
    async with read_snapshot(runtime.engine) as conn:
        yield conn


ClockDep = Annotated[Clock, Depends(get_clock)]
ConnectionDep = Annotated[AsyncConnection, Depends(get_connection)]


# The headers a till-scoped call names its partner and store by (ingest sets them); the
# partner's is also part of the call's idempotency scope.
STORE_HEADER = "Fedelta-Store-Id"
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


@dataclass(frozen=True)
class Caller:
    """Who calls: the token's scope and, for the till scope, the partner (and store) whose
    till it acts for; none for the service's own credentials, which name an actor instead."""

    scope: TokenScope
    partner_id: str | None = None
    store_id: str | None = None
    actor: str | None = None


# Fedelta-Actor, read by the console's credential alone. Out of the OpenAPI documents: like
# the credentials themselves, it is described with them (SECURITY.md), not per operation.
ActorHeader = Annotated[str | None, Header(alias=ACTOR_HEADER, include_in_schema=False)]


async def _credential_of(
    settings: ServiceSettings, authorization: str | None, actor: str | None
) -> Credential:
    token = bearer_token(authorization)
    if token is None:
        raise Problem(
            401, "Unauthorized", "send Authorization: Bearer <service token>", slug="unauthorized"
        )
    try:
        credential = credential_of(
            token,
            settings.token_hashes(),
            settings.till_hashes(),
            settings.console_hashes(),
            named_actor=actor,
        )
    except ActorError as error:
        raise Problem(400, "Bad request", str(error), slug=error.slug) from None
    if credential is None:
        # A token of another service is as unknown here as a made-up one.
        raise Problem(401, "Unauthorized", "unknown service token", slug="unauthorized")
    return credential


# The scopes each scope-checking dependency lets through, by the dependency.
_SCOPES: dict[object, frozenset[TokenScope]] = {}
# The roles that open a route needing a role: each role opens what the ones below it do.
_OPENED_BY: dict[Role, frozenset[TokenScope]] = {
    "read": frozenset({"read", "operate", "admin"}),
    "operate": frozenset({"operate", "admin"}),
    "admin": frozenset({"admin"}),
}


def _forbidden(detail: str) -> Problem:
    return Problem(403, "Forbidden", detail, slug="forbidden")


def _check_role(credential: Credential, needed: Role) -> Credential:
    if credential.scope == "till":
        raise _forbidden("the till scope does not open this call")
    if credential.scope not in _OPENED_BY[needed]:
        raise _forbidden(f"this call needs the {needed} role; the token has the {credential.scope}")
    return credential


def require_credential(needed: Role) -> Callable[..., Awaitable[Credential]]:
    """The caller's credential, when its role is `needed` or above (read < operate < admin);
    the till token opens none of the routes that take this (403)."""

    async def check(
        settings: SettingsDep,
        authorization: Annotated[str | None, Header()] = None,
        actor: ActorHeader = None,
    ) -> Credential:
        return _check_role(await _credential_of(settings, authorization, actor), needed)

    _SCOPES[check] = _OPENED_BY[needed]
    return check


def require_scope(needed: Role) -> Callable[..., Awaitable[TokenScope]]:
    """`require_credential`, answering the credential's scope only."""

    async def check(
        settings: SettingsDep,
        authorization: Annotated[str | None, Header()] = None,
        actor: ActorHeader = None,
    ) -> TokenScope:
        return _check_role(await _credential_of(settings, authorization, actor), needed).scope

    _SCOPES[check] = _OPENED_BY[needed]
    return check


def till_identifier(header: str, value: str | None, *, required: bool) -> str | None:
    """A partner's or store's id as a till call names it: bounded like every identifier; a
    400 problem when malformed, or missing and required."""
    if value is None and not required:
        return None
    if value is None or len(value) > MAX_ID_LENGTH or not _IDENTIFIER.fullmatch(value):
        raise Problem(
            400,
            "Bad request",
            f"{header} must be 1 to {MAX_ID_LENGTH} letters, digits and . _ : - "
            "(a till call names the partner it acts for)",
            slug="invalid-partner-id" if header == PARTNER_HEADER else "invalid-store-id",
        )
    return value


def require_caller(*, read: bool, till: bool) -> Callable[..., Awaitable[Caller]]:
    """The caller of a route that takes the admin role, and every role when `read`, and the
    till scope when `till`; a till caller names its partner (required) and store."""
    needed: Role = "read" if read else "admin"

    async def check(
        settings: SettingsDep,
        authorization: Annotated[str | None, Header()] = None,
        partner_id: Annotated[str | None, Header(alias=PARTNER_HEADER)] = None,
        store_id: Annotated[str | None, Header(alias=STORE_HEADER)] = None,
        actor: ActorHeader = None,
    ) -> Caller:
        credential = await _credential_of(settings, authorization, actor)
        if credential.scope != "till" or not till:
            credential = _check_role(credential, needed)
            return Caller(credential.scope, actor=credential.actor)
        return Caller(
            credential.scope,
            partner_id=till_identifier(PARTNER_HEADER, partner_id, required=True),
            store_id=till_identifier(STORE_HEADER, store_id, required=False),
        )

    _SCOPES[check] = _OPENED_BY[needed] | ({"till"} if till else frozenset())
    return check


def scopes_taken(dependency: object) -> frozenset[TokenScope] | None:
    """The token scopes a dependency made by `require_scope`, `require_credential` or
    `require_caller` lets through; None for any other dependency (what a walk over an app's
    routes looks for)."""
    return _SCOPES.get(dependency)


ReadScope = Annotated[TokenScope, Depends(require_scope("read"))]
OperateScope = Annotated[TokenScope, Depends(require_scope("operate"))]
AdminScope = Annotated[TokenScope, Depends(require_scope("admin"))]
# The admin credential itself, for the calls that record who acted (its `actor`).
AdminCredential = Annotated[Credential, Depends(require_credential("admin"))]
# Routes a till may call too (through ingest): reads (balance, rewards) and spends.
ReadOrTillCaller = Annotated[Caller, Depends(require_caller(read=True, till=True))]
AdminOrTillCaller = Annotated[Caller, Depends(require_caller(read=False, till=True))]
