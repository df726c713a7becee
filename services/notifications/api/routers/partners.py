"""Partner webhooks: where a partner is told, signed, about the customers it enrolled.

Admin only: registering a URL makes this service call it, so the operator does it for the
partner. The signing secret is made here and shown once, in the answer that creates it."""

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse

from services.notifications.adapters.repository import SqlNotificationRepository
from services.notifications.api.deps import AdminScope, ClockDep, RuntimeDep
from services.notifications.api.schemas import WebhookIn, WebhookOut
from services.notifications.domain.model import PartnerWebhook
from shared.bounds import Identifier
from shared.web.problems import PROBLEM_JSON, Problem

router = APIRouter(prefix="/v1/partners", tags=["partner webhooks"])

_MEANINGS = {
    401: "A missing or unknown service token",
    403: "The call needs the admin scope",
    404: "The partner has no webhook",
    422: "Invalid request, e.g. a URL that is not http(s)",
}


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"description": _MEANINGS[status], "content": {PROBLEM_JSON: {}}}
        for status in statuses
    }


def _not_found(partner_id: str) -> Problem:
    return Problem(
        404, "Not found", f"partner {partner_id!r} has no webhook", slug="unknown-webhook"
    )


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
    _: AdminScope,
) -> WebhookOut | JSONResponse:
    """Registers the partner's webhook (201, with its signing secret: the only time it is
    shown), or points an existing one to a new URL (200, the secret unchanged). To change
    the secret, delete the webhook and register it again."""
    now = clock.now()
    async with runtime.engine.begin() as conn:
        notifications = SqlNotificationRepository(conn)
        candidate = PartnerWebhook(
            partner_id=partner_id,
            url=body.url,
            secret=secrets.token_urlsafe(32),
            created_at=now,
        )
        created = await notifications.register_webhook(candidate, now)
        stored = await notifications.webhook(partner_id)
    assert stored is not None
    answer = WebhookOut(
        partner_id=partner_id,
        url=stored.url,
        created_at=stored.created_at,
        secret=stored.secret if created else None,
    )
    if created:
        return JSONResponse(
            status_code=201,
            content=answer.model_dump(mode="json", exclude_none=True),
            headers={"Cache-Control": "no-store"},
        )
    return answer


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
    async with runtime.engine.connect() as conn:
        stored = await SqlNotificationRepository(conn).webhook(partner_id)
    if stored is None:
        raise _not_found(partner_id)
    return WebhookOut(partner_id=partner_id, url=stored.url, created_at=stored.created_at)


@router.delete("/{partner_id}/webhook", status_code=204, responses=_problems(401, 403, 404, 422))
async def delete_webhook(
    partner_id: Annotated[Identifier, Path()],
    runtime: RuntimeDep,
    _: AdminScope,
) -> Response:
    """Removes the webhook: the calls still waiting for it are suppressed when they fall due."""
    async with runtime.engine.begin() as conn:
        removed = await SqlNotificationRepository(conn).remove_webhook(partner_id)
    if not removed:
        raise _not_found(partner_id)
    return Response(status_code=204)
