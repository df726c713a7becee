"""The web's own rows: staff accounts, sessions, sign-in tokens, login failures."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.web.adapters import tables
from services.web.domain.model import Failures, SignInToken
from services.web.ports import Session, StaffAccount

_staff = tables.staff_accounts
_sessions = tables.sessions
_tokens = tables.sign_in_tokens
_failures = tables.login_failures


class SqlWebRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def staff(self, username: str) -> StaffAccount | None:
        row = (
            await self._conn.execute(sa.select(_staff).where(_staff.c.username == username))
        ).first()
        if row is None:
            return None
        return StaffAccount(row.username, row.password_hash, row.role, row.disabled_at is not None)

    async def any_staff(self) -> bool:
        return (
            await self._conn.execute(sa.select(sa.exists().select_from(_staff)))
        ).scalar() is True

    async def add_staff(self, account: StaffAccount, at: datetime) -> bool:
        values = {
            "username": account.username,
            "password_hash": account.password_hash,
            "role": account.role,
            "created_at": at,
        }
        result = await self._conn.execute(
            insert(_staff).values(values).on_conflict_do_nothing().returning(_staff.c.username)
        )
        return result.first() is not None

    async def all_staff(self) -> list[StaffAccount]:
        rows = await self._conn.execute(sa.select(_staff).order_by(_staff.c.username))
        return [
            StaffAccount(row.username, row.password_hash, row.role, row.disabled_at is not None)
            for row in rows
        ]

    async def disable_staff(self, username: str, at: datetime) -> bool:
        """Disables the account and ends its sessions; False when there is no such account."""
        result = await self._conn.execute(
            _staff.update()
            .where(_staff.c.username == username, _staff.c.disabled_at.is_(None))
            .values(disabled_at=at)
            .returning(_staff.c.username)
        )
        await self._conn.execute(
            _sessions.delete().where(_sessions.c.kind == "staff", _sessions.c.subject == username)
        )
        return result.first() is not None

    async def set_password_hash(self, username: str, password_hash: str) -> None:
        await self._conn.execute(
            _staff.update().where(_staff.c.username == username).values(password_hash=password_hash)
        )

    async def add_session(self, token_hash: str, session: Session) -> None:
        await self._conn.execute(
            _sessions.insert().values(
                token_hash=token_hash,
                kind=session.kind,
                subject=session.subject,
                role=session.role,
                csrf_token=session.csrf_token,
                created_at=session.created_at,
                last_seen_at=session.created_at,
                expires_at=session.expires_at,
            )
        )

    async def session(self, token_hash: str) -> Session | None:
        query = sa.select(_sessions).where(_sessions.c.token_hash == token_hash)
        row = (await self._conn.execute(query)).first()
        if row is None:
            return None
        return Session(
            row.kind, row.subject, row.role, row.csrf_token, row.created_at, row.expires_at
        )

    async def touch_session(self, token_hash: str, seen_at: datetime, expires_at: datetime) -> None:
        await self._conn.execute(
            _sessions.update()
            .where(_sessions.c.token_hash == token_hash)
            .values(last_seen_at=seen_at, expires_at=expires_at)
        )

    async def end_session(self, token_hash: str) -> None:
        await self._conn.execute(_sessions.delete().where(_sessions.c.token_hash == token_hash))

    async def failures(self, key: str) -> Failures | None:
        row = (await self._conn.execute(sa.select(_failures).where(_failures.c.key == key))).first()
        return None if row is None else Failures(row.failures, row.first_at, row.locked_until)

    async def set_failures(self, key: str, failures: Failures) -> None:
        values = {
            "key": key,
            "failures": failures.count,
            "first_at": failures.first_at,
            "locked_until": failures.locked_until,
        }
        statement = insert(_failures).values(values)
        await self._conn.execute(
            statement.on_conflict_do_update(index_elements=["key"], set_=values)
        )

    async def clear_failures(self, key: str) -> None:
        await self._conn.execute(_failures.delete().where(_failures.c.key == key))

    async def add_sign_in_token(self, token_hash: str, token: SignInToken, at: datetime) -> None:
        await self._conn.execute(
            _tokens.insert().values(
                token_hash=token_hash,
                customer_id=token.customer_id,
                created_at=at,
                expires_at=token.expires_at,
            )
        )

    async def use_sign_in_token(self, token_hash: str, now: datetime) -> SignInToken | None:
        """Marks the token used in the same statement that checks it: a second use, even at
        the same instant from another request, finds it used."""
        result = await self._conn.execute(
            _tokens.update()
            .where(
                _tokens.c.token_hash == token_hash,
                _tokens.c.used_at.is_(None),
                _tokens.c.expires_at > now,
            )
            .values(used_at=now)
            .returning(_tokens.c.customer_id, _tokens.c.expires_at)
        )
        row = result.first()
        return None if row is None else SignInToken(row.customer_id, row.expires_at, now)


def web_repository(conn: AsyncConnection) -> SqlWebRepository:
    return SqlWebRepository(conn)
