"""One-click unsubscribe (RFC 8058): the link in every email turns the customer's emails off.

No service token: the token in the path is the authorisation, an HMAC of the customer id that
only this service can make. Naturally idempotent (it sets the email preference off), so it
needs no Idempotency-Key, which mail clients would not send anyway."""

from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse

from services.notifications.api.deps import ClockDep, HarassmentDep, RuntimeDep, UnsubscribeKeyDep
from services.notifications.api.schemas import UnsubscribedOut
from services.notifications.usecases import unsubscribe as usecase
from shared.web.problems import PROBLEM_JSON

router = APIRouter(prefix="/v1/unsubscribe", tags=["unsubscribe"])

Token = Annotated[
    str, Path(min_length=3, max_length=512, pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
]

_MEANINGS = {
    404: "The token is not valid, or its customer is no longer known",
    422: "Invalid request",
    503: "The database cannot be reached right now; retry (retries are safe)",
}


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"description": _MEANINGS[status], "content": {PROBLEM_JSON: {}}}
        for status in statuses
    }


@router.post("/{token}", response_model=UnsubscribedOut, responses=_problems(404, 422, 503))
async def unsubscribe(
    token: Token,
    key: UnsubscribeKeyDep,
    runtime: RuntimeDep,
    harassment: HarassmentDep,
    clock: ClockDep,
) -> UnsubscribedOut:
    """Turns the customer's email preference off; other preferences stay as they are."""
    return await usecase.unsubscribe(runtime.engine, token, key, harassment, clock)


@router.get(
    "/{token}",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}}, **_problems(404, 422)},
)
async def unsubscribe_page(token: Token, key: UnsubscribeKeyDep) -> HTMLResponse:
    """The page the link opens: a button that confirms. Opening a link changes nothing, since
    mail scanners open links too; the POST does."""
    usecase.check_link(token, key)
    action = escape(f"/v1/unsubscribe/{token}")
    return HTMLResponse(
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Unsubscribe</title></head>'
        f'<body><form method="post" action="{action}">'
        '<button type="submit">Unsubscribe / Annulla iscrizione / Peru tilaus / Wypisz się'
        "</button></form></body></html>\n"
    )
