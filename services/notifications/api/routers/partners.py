"""Partner webhooks: where a partner is told, signed, about the customers it enrolled.

Admin only: registering a URL makes this service call it, so the operator does it for the
partner. The signing secret is made here and shown once, in the answer that creates it."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse

from services.notifications.api.deps import AdminScope, ClockDep, RuntimeDep, WebhookGuardDep
from services.notifications.api.schemas import WebhookIn, WebhookOut
from services.notifications.usecases import partners
from shared.bounds import Identifier
from shared.web.problems import PROBLEM_JSON

router = APIRouter(prefix="/v1/partners", tags=["partner webhooks"])

_MEANINGS = {
    401: "A missing or unknown service token",
    403: "The call needs the admin scope",
    404: "The partner has no webhook",
    422: "Invalid request, e.g. a URL that is not https, or whose host is (or resolves to) a"
    " loopback, private, link-local or other non-public address",
}


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"description": _MEANINGS[status], "content": {PROBLEM_JSON: {}}}
        for status in statuses
    }


@router.put(
    "/{partner_id}/webhook",
    response_model=WebhookOut,
    response_model_exclude_none=True,
    status_code=200,
    responses={
        201: {"model": WebhookOut, "description": "Registered; the answer carries the secret"},
        **_problems(401, 403, 422),
    },
)
async def put_webhook(
    partner_id: Annotated[Identifier, Path()],
    body: WebhookIn,
    runtime: RuntimeDep,
    clock: ClockDep,
    guard: WebhookGuardDep,
    _: AdminScope,
) -> WebhookOut | JSONResponse:
    """Registers the partner's webhook (201, with its signing secret: the only time it is
    shown), or points an existing one to a new URL (200, the secret unchanged). To change
    the secret, delete the webhook and register it again. The URL is https and its host
    public: one that is, or resolves to, a loopback, private, link-local or other non-public
    address is refused (422), and checked again before every call."""
    registered = await partners.register_webhook(runtime.engine, partner_id, body, clock, guard)
    if registered.created:
        return JSONResponse(
            status_code=201,
            content=registered.answer.model_dump(mode="json", exclude_none=True),
            headers={"Cache-Control": "no-store"},
        )
    return registered.answer


@router.get(
    "/{partner_id}/webhook",
    response_model=WebhookOut,
    response_model_exclude_none=True,
    responses=_problems(401, 403, 404, 422),
)
async def get_webhook(
    partner_id: Annotated[Identifier, Path()],
    runtime: RuntimeDep,
    _: AdminScope,
) -> WebhookOut:
    """The partner's webhook, without its secret."""
    return await partners.get_webhook(runtime.engine, partner_id)


@router.delete("/{partner_id}/webhook", status_code=204, responses=_problems(401, 403, 404, 422))
async def delete_webhook(
    partner_id: Annotated[Identifier, Path()],
    runtime: RuntimeDep,
    _: AdminScope,
) -> Response:
    """Removes the webhook: the calls still waiting for it are suppressed when they fall due."""
    await partners.remove_webhook(runtime.engine, partner_id)
    return Response(status_code=204)
