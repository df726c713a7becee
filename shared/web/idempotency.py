"""The `Idempotency-Key` header of every state-changing call (contract §4).

A retry with the same key and the same request gets the first answer again, marked
`Idempotent-Replayed: true`; the same key with another request is a 409. Keys belong to the
caller's credentials, so two partners cannot collide. Only successful answers are kept: a call
that failed changed nothing and may be retried under the same key. Same-key calls are
serialized by a transaction-scoped advisory lock, so two concurrent retries cannot both apply.
A call is either handled alone, through `run_keyed` (the one way a use case takes its key), or
in a group sharing one transaction (`kept_answers` first, `remember_all` last: ingest's
group commit of purchases).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

import sqlalchemy as sa
from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.clock import Clock
from shared.storage.locks import lock_for_transaction, lock_name
from shared.storage.transactions import in_transaction
from shared.web.problems import Problem

HEADER = "Idempotency-Key"
# A till-scoped call names its partner so (shared.web.deps.PARTNER_HEADER).
PARTNER_HEADER = "Fedelta-Partner-Id"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255


def define_idempotency_keys(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "idempotency_keys",
        metadata,
        sa.Column("scope", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("request_hash", sa.Text, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


@dataclass(frozen=True)
class KeptAnswer:
    """The first successful answer given under a key."""

    request_hash: str
    status_code: int
    response: dict[str, Any]


KeyId = tuple[str, str]  # (scope, key)


@dataclass(frozen=True)
class IdempotentCall:
    """One call's key, or none: `replay` first in the call's transaction, `remember` last."""

    key: str | None
    scope: str
    request_hash: str

    @property
    def key_id(self) -> KeyId | None:
        return None if self.key is None else (self.scope, self.key)

    async def replay(self, conn: AsyncConnection, table: sa.Table) -> JSONResponse | None:
        """The first answer for this key, or None when this call is the first."""
        if self.key_id is None:
            return None
        kept = (await kept_answers(conn, table, [self])).get(self.key_id)
        return None if kept is None else self.replay_of(kept)

    def replay_of(self, kept: KeptAnswer) -> JSONResponse:
        """The kept answer again; a 409 when the key was kept for another request."""
        if kept.request_hash != self.request_hash:
            raise Problem(
                409,
                "Conflict",
                f"{HEADER} {self.key!r} was already used for another request; "
                "use a new key for a new request",
                slug="idempotency-key-reused",
            )
        return JSONResponse(
            kept.response, status_code=kept.status_code, headers={REPLAYED_HEADER: "true"}
        )

    def kept(self, status_code: int, answer: BaseModel) -> KeptAnswer:
        return KeptAnswer(self.request_hash, status_code, answer.model_dump(mode="json"))

    async def remember(
        self,
        conn: AsyncConnection,
        table: sa.Table,
        status_code: int,
        answer: BaseModel,
        now: datetime,
    ) -> None:
        await remember_all(conn, table, [(self, self.kept(status_code, answer))], now)


async def kept_answers(
    conn: AsyncConnection, table: sa.Table, calls: Iterable[IdempotentCall]
) -> dict[KeyId, KeptAnswer]:
    """Locks the calls' keys until the transaction ends, then reads what is kept for them.

    Locked first and read after, in two statements: a statement reads as of its start, so a
    read in the locking statement could miss an answer committed while it waited. The locks
    are taken in one order (by lock id), so two groups sharing keys cannot deadlock."""
    key_ids = sorted({key_id for call in calls if (key_id := call.key_id) is not None})
    if not key_ids:
        return {}
    await lock_for_transaction(conn, [lock_name(table.name, scope, key) for scope, key in key_ids])
    rows = await conn.execute(
        _kept_answers_statement(table),
        {"scopes": [scope for scope, _ in key_ids], "keys": [key for _, key in key_ids]},
    )
    return {
        (row.scope, row.key): KeptAnswer(row.request_hash, row.status_code, row.response)
        for row in rows
    }


@functools.cache
def _kept_answers_statement(table: sa.Table) -> sa.Select[Any]:
    """Built once per table: a statement built on every call costs more than it runs."""
    wanted = (
        sa.func.unnest(
            sa.cast(sa.bindparam("scopes"), ARRAY(sa.Text)),
            sa.cast(sa.bindparam("keys"), ARRAY(sa.Text)),
        )
        .table_valued("scope", "key")
        .render_derived(name="wanted")
    )
    return sa.select(
        table.c.scope, table.c.key, table.c.request_hash, table.c.status_code, table.c.response
    ).where(sa.tuple_(table.c.scope, table.c.key).in_(sa.select(wanted.c.scope, wanted.c.key)))


async def remember_all(
    conn: AsyncConnection,
    table: sa.Table,
    answers: Sequence[tuple[IdempotentCall, KeptAnswer]],
    now: datetime,
) -> None:
    """Keeps the answers of the calls that carry a key, in one statement."""
    rows = [
        {
            "scope": call.scope,
            "key": call.key,
            "request_hash": kept.request_hash,
            "status_code": kept.status_code,
            "response": kept.response,
            "created_at": now,
        }
        for call, kept in answers
        if call.key is not None
    ]
    if rows:
        await conn.execute(table.insert(), rows)


async def idempotent_call(
    request: Request,
    # The bounds are documented here and enforced below, so a bad key stays a 400 problem.
    idempotency_key: Annotated[
        str | None,
        Header(alias=HEADER, json_schema_extra={"minLength": 1, "maxLength": MAX_KEY_LENGTH}),
    ] = None,
) -> IdempotentCall:
    if not valid_key(idempotency_key):
        raise Problem(
            400,
            "Bad request",
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters",
            slug="invalid-idempotency-key",
        )
    return call_of(
        idempotency_key,
        request.headers.get("authorization", ""),
        request.method,
        request.url.path,
        await request.body(),
        partner_id=request.headers.get(PARTNER_HEADER),
    )


def valid_key(key: str | None) -> bool:
    """No key, or one of the allowed length (a bad one is a 400, `idempotent_call`)."""
    return key is None or 1 <= len(key) <= MAX_KEY_LENGTH


def call_of(
    key: str | None,
    authorization: str,
    method: str,
    path: str,
    body: bytes,
    *,
    partner_id: str | None = None,
) -> IdempotentCall:
    """The call's key in the scope of its credentials (the Authorization header as received,
    and the partner a till-scoped call acts for: one till token serves every partner, whose
    keys must never collide), fingerprinted by method, path and raw body: what
    `idempotent_call` takes from a request, for a handler that reads them without FastAPI
    (ingest's hot path)."""
    credentials = [authorization.encode()]
    if partner_id is not None:
        credentials.append(partner_id.encode())
    return IdempotentCall(
        key=key,
        scope=_digest(*credentials),
        request_hash=_digest(method.encode(), path.encode(), body),
    )


A = TypeVar("A", bound=BaseModel)


async def run_keyed(
    engine: AsyncEngine,
    call: IdempotentCall,
    table: sa.Table,
    *,
    status_code: int,
    clock: Clock,
    work: Callable[[AsyncConnection], Awaitable[A]],
) -> A | JSONResponse:
    """A state-changing call in one transaction (`in_transaction`: retried once on a stale
    connection): the first answer again when its key was kept, else `work`'s answer, kept
    under the key in the same transaction. A `work` that raises keeps nothing."""

    async def keyed(conn: AsyncConnection) -> A | JSONResponse:
        if (replayed := await call.replay(conn, table)) is not None:
            return replayed
        answer = await work(conn)
        await call.remember(conn, table, status_code, answer, clock.now())
        return answer

    return await in_transaction(engine, keyed)


def _digest(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


IdempotencyDep = Annotated[IdempotentCall, Depends(idempotent_call)]
