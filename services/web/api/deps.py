"""Every dependency the web's routers take, as Annotated aliases: the runtime and its gateway to
the other services, the session policy, the signed-in staff member or member (a page without
one sends the browser to sign in), and the form's CSRF check."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Form, Request

from services.web.api.pages import same_token
from services.web.domain.model import Action, SessionPolicy, may
from services.web.ports import Services, Session
from services.web.settings import WebSettings
from services.web.usecases.sessions import live_session
from shared.web.deps import ClockDep, RuntimeDep, SettingsDep

STAFF_COOKIE = "fedelta_staff"
MEMBER_COOKIE = "fedelta_member"


class SignInNeeded(Exception):
    """No live session of the kind the page needs: the app sends the browser to sign in."""

    def __init__(self, sign_in_url: str) -> None:
        super().__init__(sign_in_url)
        self.sign_in_url = sign_in_url


class NotAllowed(Exception):
    """The signed-in staff member's role does not open the page or action (403 page)."""


class CsrfRefused(Exception):
    """A form without the session's token (403 page)."""


async def get_web_settings(settings: SettingsDep) -> WebSettings:
    assert isinstance(settings, WebSettings)
    return settings


WebSettingsDep = Annotated[WebSettings, Depends(get_web_settings)]


async def get_policy(settings: WebSettingsDep) -> SessionPolicy:
    return SessionPolicy(
        idle=timedelta(minutes=settings.session_idle_minutes),
        longest=timedelta(hours=settings.session_max_hours),
    )


PolicyDep = Annotated[SessionPolicy, Depends(get_policy)]


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


@dataclass(frozen=True)
class Staff:
    username: str
    role: str
    csrf_token: str

    @property
    def actor(self) -> str:
        return f"staff:{self.username}"

    def may(self, action: Action) -> bool:
        return may(self.role, action)


@dataclass(frozen=True)
class Member:
    customer_id: str
    csrf_token: str

    @property
    def actor(self) -> str:
        return f"member:{self.customer_id}"


async def current_staff(
    request: Request, runtime: RuntimeDep, clock: ClockDep, policy: PolicyDep
) -> Staff:
    session = await _session(request, runtime, clock, policy, STAFF_COOKIE, "staff")
    if session is None or session.role is None:
        raise SignInNeeded("/console/sign-in")
    return Staff(session.subject, session.role, session.csrf_token)


async def current_member(
    request: Request, runtime: RuntimeDep, clock: ClockDep, policy: PolicyDep
) -> Member:
    session = await _session(request, runtime, clock, policy, MEMBER_COOKIE, "member")
    if session is None:
        raise SignInNeeded("/wallet/sign-in")
    return Member(session.subject, session.csrf_token)


async def _session(
    request: Request,
    runtime: RuntimeDep,
    clock: ClockDep,
    policy: SessionPolicy,
    cookie: str,
    kind: str,
) -> Session | None:
    return await live_session(runtime.engine, clock, policy, request.cookies.get(cookie), kind)


StaffDep = Annotated[Staff, Depends(current_staff)]
MemberDep = Annotated[Member, Depends(current_member)]


def requires(action: Action) -> Callable[[Staff], Awaitable[Staff]]:
    """A staff member whose role opens `action` (viewer < manager < admin)."""

    async def check(staff: StaffDep) -> Staff:
        if not staff.may(action):
            raise NotAllowed(action)
        return staff

    return check


ManagerDep = Annotated[Staff, Depends(requires("manage"))]
AdminStaffDep = Annotated[Staff, Depends(requires("administer"))]
CsrfField = Annotated[str, Form(alias="csrf_token", max_length=100)]


def check_csrf(given: str, expected: str) -> None:
    if not same_token(given, expected):
        raise CsrfRefused()


__all__ = [
    "AdminStaffDep",
    "ClockDep",
    "CsrfField",
    "ManagerDep",
    "MemberDep",
    "PolicyDep",
    "RuntimeDep",
    "ServicesDep",
    "StaffDep",
    "WebSettingsDep",
    "check_csrf",
]
