"""The `Idempotency-Key` header of every state-changing call (contract §4).

A retry with the same key and the same request gets the first answer again, marked
`Idempotent-Replayed: true`; the same key with another request is a 409. Keys belong to the
caller's credentials, so two partners cannot collide. Only successful answers are kept: a call
that failed changed nothing and may be retried under the same key. Same-key calls are
serialized by a transaction-scoped advisory lock, so two concurrent retries cannot both apply.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.problems import Problem

HEADER = "Idempotency-Key"
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
class IdempotentCall:
    """One call's key, or none: `replay` first in the call's transaction, `remember` last."""

    key: str | None
    scope: str
    request_hash: str

    async def replay(self, conn: AsyncConnection, table: sa.Table) -> JSONResponse | None:
        """The first answer for this key, or None when this call is the first."""
        if self.key is None:
            return None
        lock = sa.func.pg_advisory_xact_lock(
            sa.func.hashtextextended(f"{table.name}/{self.scope}/{self.key}", 0)
        )
        await conn.execute(sa.select(lock))
        row = (
            await conn.execute(
                sa.select(table.c.request_hash, table.c.status_code, table.c.response).where(
                    table.c.scope == self.scope, table.c.key == self.key
                )
            )
        ).first()
        if row is None:
            return None
        if row.request_hash != self.request_hash:
            raise Problem(
                409,
                "Conflict",
                f"{HEADER} {self.key!r} was already used for another request; "
                "use a new key for a new request",
                slug="idempotency-key-reused",
            )
        return JSONResponse(
            row.response, status_code=row.status_code, headers={REPLAYED_HEADER: "true"}
        )

    async def remember(
        self,
        conn: AsyncConnection,
        table: sa.Table,
        status_code: int,
        answer: BaseModel,
        now: datetime,
    ) -> None:
        if self.key is None:
            return
        await conn.execute(
            table.insert().values(
                scope=self.scope,
                key=self.key,
                request_hash=self.request_hash,
                status_code=status_code,
                response=answer.model_dump(mode="json"),
                created_at=now,
            )
        )


async def idempotent_call(
    request: Request,
    idempotency_key: Annotated[str | None, Header(alias=HEADER)] = None,
) -> IdempotentCall:
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_KEY_LENGTH:
        raise Problem(
            400,
            "Bad request",
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters",
            slug="invalid-idempotency-key",
        )
    credentials = request.headers.get("authorization", "")
    return IdempotentCall(
        key=idempotency_key,
        scope=_digest(credentials.encode()),
        request_hash=_digest(
            request.method.encode(), request.url.path.encode(), await request.body()
        ),
    )


def _digest(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


IdempotencyDep = Annotated[IdempotentCall, Depends(idempotent_call)]
