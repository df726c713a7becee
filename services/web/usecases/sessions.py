"""Sessions: made at sign-in, found by the cookie's token (its SHA-256 in the database), kept
alive by use within the idle limit and ended at the longest, or at sign-out."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.web.adapters.repositories.api import web_repository
from services.web.domain.model import SessionPolicy
from services.web.ports import Session
from shared.clock import Clock
from shared.storage.transactions import in_transaction


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class SignedIn:
    token: str  # the cookie's value: never stored
    session: Session


async def open_session(
    conn: AsyncConnection,
    clock: Clock,
    policy: SessionPolicy,
    *,
    kind: str,
    subject: str,
    role: str | None = None,
) -> SignedIn:
    now = clock.now()
    session = Session(kind, subject, role, new_token(), now, policy.expires_at(now, now))
    token = new_token()
    await web_repository(conn).add_session(token_hash(token), session)
    return SignedIn(token, session)


async def live_session(
    engine: AsyncEngine, clock: Clock, policy: SessionPolicy, token: str | None, kind: str
) -> Session | None:
    """The session the cookie names, of that kind and not expired, its idle time restarted."""
    if not token or len(token) > 100:
        return None
    digest = token_hash(token)

    async def work(conn: AsyncConnection) -> Session | None:
        repository = web_repository(conn)
        session = await repository.session(digest)
        now = clock.now()
        if session is None or session.kind != kind or session.expires_at <= now:
            return None
        expires_at = policy.expires_at(session.created_at, now)
        await repository.touch_session(digest, now, expires_at)
        return session

    return await in_transaction(engine, work)


async def end_session(engine: AsyncEngine, token: str | None) -> None:
    if not token or len(token) > 100:
        return

    async def work(conn: AsyncConnection) -> None:
        await web_repository(conn).end_session(token_hash(token))

    await in_transaction(engine, work)
