"""Staff accounts in the console (admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, Response

from services.web.api.deps import AdminStaffDep, ClockDep, CsrfField, RuntimeDep, Staff, check_csrf
from services.web.api.pages import redirect, render
from services.web.usecases import staff_accounts

router = APIRouter(prefix="/console/staff", include_in_schema=False)

NewUsername = Annotated[str, Form(min_length=1, max_length=64)]
Role = Annotated[str, Form(min_length=1, max_length=16)]
NewPassword = Annotated[str, Form(min_length=1, max_length=256)]
Username = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9._-]+$")]
DONE = {"staff.created", "staff.disabled_notice"}


async def _page(
    request: Request, who: Staff, runtime: RuntimeDep, *, error: str | None, done: str | None
) -> HTMLResponse:
    accounts = await staff_accounts.list_staff(runtime.engine)
    context = {"staff": who, "accounts": accounts, "error": error, "done": done}
    status = 422 if error else 200
    return render(
        request, "console/staff.html", context, status_code=status, csrf_token=who.csrf_token
    )


@router.get("")
async def staff_page(
    request: Request, who: AdminStaffDep, runtime: RuntimeDep, done: str | None = None
) -> HTMLResponse:
    return await _page(request, who, runtime, error=None, done=done if done in DONE else None)


@router.post("")
async def create_account(
    request: Request,
    who: AdminStaffDep,
    runtime: RuntimeDep,
    clock: ClockDep,
    csrf: CsrfField,
    username: NewUsername,
    role: Role,
    password: NewPassword,
) -> Response:
    check_csrf(csrf, who.csrf_token)
    error = await staff_accounts.create_staff(
        runtime.engine, clock, username=username.strip().lower(), role=role, password=password
    )
    if error is not None:
        return await _page(request, who, runtime, error=error, done=None)
    return redirect("/console/staff?done=staff.created")


@router.post("/{username}/disable")
async def disable_account(
    request: Request,
    username: Username,
    who: AdminStaffDep,
    runtime: RuntimeDep,
    clock: ClockDep,
    csrf: CsrfField,
) -> Response:
    check_csrf(csrf, who.csrf_token)
    error = await staff_accounts.disable_staff(
        runtime.engine, clock, username=username, by=who.username
    )
    if error is not None:
        return await _page(request, who, runtime, error=error, done=None)
    return redirect("/console/staff?done=staff.disabled_notice")
