"""The console's members: the search, a member's 360° page, and what a manager changes there
(points adjusted, a tier overridden). Viewers see no form and get 403 if they post one."""

import re
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.web.api.deps import (
    CsrfField,
    ManagerDep,
    ServicesDep,
    Staff,
    StaffDep,
    check_csrf,
)
from services.web.api.pages import new_form_token, redirect, render
from services.web.usecases import adjustments, member_view
from services.web.usecases.adjustments import Outcome
from shared.bounds import IDENTIFIER_PATTERN, MAX_ID_LENGTH, MAX_LABEL_LENGTH, PRINTABLE_PATTERN

router = APIRouter(prefix="/console/members", include_in_schema=False)

CustomerId = Annotated[str, Path(max_length=MAX_ID_LENGTH, pattern=IDENTIFIER_PATTERN)]
# The notices a page shows after a change (`?done=`): only these.
DONE = frozenset({"console.adjusted", "console.overridden"})
Done = Annotated[str | None, Query(max_length=40)]
# The form's Idempotency-Key, made when it was rendered (new_form_token).
FormKey = Annotated[str, Form(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
# What a person types is read as text (bounded) and checked here, so a mistake gets the page
# with an error rather than a bare 422.
Typed = Annotated[str, Form(max_length=4 * MAX_LABEL_LENGTH)]
TIERS = ("bronze", "silver", "gold", "platinum")
MAX_ADJUSTMENT = 1_000_000
NOT_A_DAY = date.min


@router.get("")
async def search(
    request: Request,
    who: StaffDep,
    services: ServicesDep,
    q: Annotated[str, Query(max_length=254)] = "",
) -> HTMLResponse:
    found = await member_view.search_members(services, who.actor, q)
    status = 422 if found.problem else 503 if found.unavailable else 200
    return render(
        request,
        "console/members.html",
        {"staff": who, "found": found},
        status_code=status,
        csrf_token=who.csrf_token,
    )


@router.get("/{customer_id}")
async def member(
    request: Request,
    customer_id: CustomerId,
    who: StaffDep,
    services: ServicesDep,
    done: Done = None,
) -> HTMLResponse:
    return await _page(request, who, services, customer_id, Outcome(done=done))


@router.post("/{customer_id}/adjustments", response_model=None)
async def adjust(
    request: Request,
    customer_id: CustomerId,
    who: ManagerDep,
    services: ServicesDep,
    csrf: CsrfField,
    idempotency_key: FormKey,
    points: Typed = "",
    reason: Typed = "",
) -> Response:
    check_csrf(csrf, who.csrf_token)
    amount, why = _points(points), _reason(reason)
    if amount is None or why is None:
        return await _page(request, who, services, customer_id, _invalid("console.adjust.invalid"))
    outcome = await adjustments.adjust_points(
        services, who.actor, customer_id, points=amount, reason=why, key=idempotency_key
    )
    return await _after(request, who, services, customer_id, outcome)


@router.post("/{customer_id}/tier", response_model=None)
async def override(
    request: Request,
    customer_id: CustomerId,
    who: ManagerDep,
    services: ServicesDep,
    csrf: CsrfField,
    idempotency_key: FormKey,
    tier: Typed = "",
    reason: Typed = "",
    until: Typed = "",
) -> Response:
    check_csrf(csrf, who.csrf_token)
    why, review = _reason(reason), _day(until)
    if tier not in TIERS or why is None or review == NOT_A_DAY:
        return await _page(
            request, who, services, customer_id, _invalid("console.override.invalid")
        )
    outcome = await adjustments.override_tier(
        services, who.actor, customer_id, tier=tier, reason=why, until=review, key=idempotency_key
    )
    return await _after(request, who, services, customer_id, outcome)


def _points(typed: str) -> int | None:
    """A whole number of points other than 0, within what points takes."""
    text = typed.strip()
    if not re.fullmatch(r"[+-]?[0-9]{1,7}", text):
        return None
    points = int(text)
    return points if points and abs(points) <= MAX_ADJUSTMENT else None


def _reason(typed: str) -> str | None:
    text = typed.strip()
    if not text or len(text) > MAX_LABEL_LENGTH or not re.fullmatch(PRINTABLE_PATTERN, text):
        return None
    return text


def _day(typed: str) -> date | None:
    """The day typed, None when left empty, NOT_A_DAY when it is not a day."""
    if not typed.strip():
        return None
    try:
        return date.fromisoformat(typed.strip())
    except ValueError:
        return NOT_A_DAY


def _invalid(problem: str) -> Outcome:
    return Outcome(problem=problem, status=422)


async def _after(
    request: Request, who: Staff, services: ServicesDep, customer_id: str, outcome: Outcome
) -> Response:
    """Made: back to the page (303, so a reload posts nothing), which says so; refused: the
    page again with why, and fresh forms."""
    if outcome.done:
        return redirect(f"/console/members/{customer_id}?done={outcome.done}")
    return await _page(request, who, services, customer_id, outcome)


async def _page(
    request: Request, who: Staff, services: ServicesDep, customer_id: str, outcome: Outcome
) -> HTMLResponse:
    view = await member_view.member_view(services, who.actor, customer_id)
    status = outcome.status if outcome.problem else 200 if view.known else 404
    context = {
        "staff": who,
        "view": view,
        "done": outcome.done if outcome.done in DONE else None,
        "problem": outcome.problem,
        "actor": f"console:{who.actor}",
        "manager": who.may("manage"),
        "adjust_key": new_form_token(),
        "tier_key": new_form_token(),
        "tiers": TIERS,
    }
    return render(
        request, "console/member.html", context, status_code=status, csrf_token=who.csrf_token
    )
