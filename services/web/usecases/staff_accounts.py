"""Staff accounts (admins only): the list, a new account with its role and a first password,
an account disabled (its sessions end at once). An admin cannot disable their own account,
so a program never loses its last way in by a slip."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.web.adapters.passwords import hash_password
from services.web.adapters.repositories.api import web_repository
from services.web.domain.model import ROLES
from services.web.ports import StaffAccount
from shared.clock import Clock
from shared.storage.transactions import in_transaction, read_snapshot

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 12


@dataclass(frozen=True)
class Account:
    username: str
    role: str
    disabled: bool


async def list_staff(engine: AsyncEngine) -> list[Account]:
    async with read_snapshot(engine) as conn:
        accounts = await web_repository(conn).all_staff()
    return [Account(a.username, a.role, a.disabled) for a in accounts]


def refusal(username: str, role: str, password: str) -> str | None:
    """The message key of what is wrong with a new account, or None."""
    if not USERNAME.fullmatch(username):
        return "staff.invalid_username"
    if role not in ROLES:
        return "staff.invalid_role"
    if len(password) < MIN_PASSWORD:
        return "staff.short_password"
    return None


async def create_staff(
    engine: AsyncEngine, clock: Clock, *, username: str, role: str, password: str
) -> str | None:
    """None once made; else the message key of why not."""
    if (problem := refusal(username, role, password)) is not None:
        return problem
    account = StaffAccount(username, hash_password(password), role)

    async def work(conn: AsyncConnection) -> bool:
        return await web_repository(conn).add_staff(account, clock.now())

    return None if await in_transaction(engine, work) else "staff.exists"


async def disable_staff(engine: AsyncEngine, clock: Clock, *, username: str, by: str) -> str | None:
    if username == by:
        return "staff.not_yourself"

    async def work(conn: AsyncConnection) -> bool:
        return await web_repository(conn).disable_staff(username, clock.now())

    return None if await in_transaction(engine, work) else "staff.unknown"
