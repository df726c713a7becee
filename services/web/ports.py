"""What the web's use cases reach: its own storage (staff, sessions, sign-in tokens, login
failures) and the other services' APIs. The SQL and HTTP adapters and the unit tests' fakes
(tests/support/fakes/web.py) both implement these."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from services.web.domain.model import Failures, SignInToken


@dataclass(frozen=True)
class StaffAccount:
    username: str
    password_hash: str
    role: str
    disabled: bool = False


@dataclass(frozen=True)
class Session:
    kind: str  # staff or member
    subject: str  # the username or the customer id
    role: str | None
    csrf_token: str
    created_at: datetime
    expires_at: datetime


class WebRepository(Protocol):
    async def staff(self, username: str) -> StaffAccount | None: ...

    async def any_staff(self) -> bool: ...

    async def add_staff(self, account: StaffAccount, at: datetime) -> bool: ...

    async def all_staff(self) -> list[StaffAccount]: ...

    async def disable_staff(self, username: str, at: datetime) -> bool: ...

    async def set_password_hash(self, username: str, password_hash: str) -> None: ...

    async def add_session(self, token_hash: str, session: Session) -> None: ...

    async def session(self, token_hash: str) -> Session | None: ...

    async def touch_session(
        self, token_hash: str, seen_at: datetime, expires_at: datetime
    ) -> None: ...

    async def end_session(self, token_hash: str) -> None: ...

    async def failures(self, key: str) -> Failures | None: ...

    async def set_failures(self, key: str, failures: Failures) -> None: ...

    async def clear_failures(self, key: str) -> None: ...

    async def add_sign_in_token(
        self, token_hash: str, token: SignInToken, at: datetime
    ) -> None: ...

    async def use_sign_in_token(self, token_hash: str, now: datetime) -> SignInToken | None:
        """The token, marked used, when it was usable (unused and unexpired); else None."""


@dataclass(frozen=True)
class Answer:
    """A service's answer: its status and JSON body (None when it had none)."""

    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class ServiceUnavailable(Exception):
    """A service did not answer (refused, timed out, 5xx): the page says so, and what it could
    show from the others."""

    def __init__(self, service: str) -> None:
        super().__init__(service)
        self.service = service


class Services(Protocol):
    """The other services' APIs, called with the web's console credential there; `actor` names
    the person acting (`staff:<username>` or `member:<customer id>`)."""

    async def get(
        self, service: str, path: str, *, actor: str, params: Mapping[str, str] | None = None
    ) -> Answer: ...

    async def send(
        self,
        method: str,
        service: str,
        path: str,
        *,
        actor: str,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Answer: ...
