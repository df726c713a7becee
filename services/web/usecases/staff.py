"""Staff sign-in: a username and password checked against the argon2id hash, throttled per
username and per client address, a session of the account's role; the first account made at
start from the settings when there is none."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.web.adapters.passwords import hash_password, needs_rehash, verify_password
from services.web.adapters.repositories.api import SqlWebRepository, web_repository
from services.web.domain.model import SessionPolicy, Throttle, after_failure
from services.web.ports import StaffAccount
from services.web.usecases.sessions import SignedIn, open_session
from shared.clock import Clock
from shared.storage.transactions import in_transaction

THROTTLE = Throttle()


@dataclass(frozen=True)
class Refused:
    locked: bool  # too many failures: try again later


async def sign_in_staff(
    engine: AsyncEngine,
    clock: Clock,
    policy: SessionPolicy,
    *,
    username: str,
    password: str,
    client: str,
) -> SignedIn | Refused:
    keys = (f"user:{username}", f"client:{client}")

    async def work(conn: AsyncConnection) -> SignedIn | Refused:
        repository = web_repository(conn)
        now = clock.now()
        for key in keys:
            failures = await repository.failures(key)
            if failures is not None and failures.locked(now):
                return Refused(locked=True)
        account = await repository.staff(username)
        known = account is not None and not account.disabled
        if not verify_password(account.password_hash if known and account else None, password):
            await _count_failure(repository, keys, clock)
            return Refused(locked=False)
        assert account is not None
        await _refresh_hash(repository, account, password)
        for key in keys:
            await repository.clear_failures(key)
        return await open_session(
            conn, clock, policy, kind="staff", subject=account.username, role=account.role
        )

    return await in_transaction(engine, work)


async def _count_failure(repository: SqlWebRepository, keys: tuple[str, ...], clock: Clock) -> None:
    for key in keys:
        current = await repository.failures(key)
        await repository.set_failures(key, after_failure(current, clock.now(), THROTTLE))


async def _refresh_hash(repository: SqlWebRepository, account: StaffAccount, password: str) -> None:
    """A hash made with weaker parameters than today's is made again while the password is at
    hand."""
    if needs_rehash(account.password_hash):
        await repository.set_password_hash(account.username, hash_password(password))


async def ensure_first_staff(
    engine: AsyncEngine, clock: Clock, username: str | None, password: str | None
) -> bool:
    """Makes the configured first account, an admin, when there is no staff account at all."""
    if not username or not password:
        return False

    async def work(conn: AsyncConnection) -> bool:
        repository = web_repository(conn)
        if await repository.any_staff():
            return False
        account = StaffAccount(username, hash_password(password), "admin")
        return await repository.add_staff(account, clock.now())

    return await in_transaction(engine, work)
