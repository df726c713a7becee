"""A customer's delivery log, and the wallet's sign-in link sent to them."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from services.notifications.api.deps import AdminScope, ClockDep, ReadScope, RuntimeDep
from services.notifications.api.schemas import NotificationLogOut, SignInLinkIn, SignInLinkOut
from services.notifications.usecases import customers
from shared.bounds import Identifier
from shared.web.problems import PROBLEM_JSON

router = APIRouter(prefix="/v1/customers", tags=["customers"])

_MEANINGS = {
    401: "A missing or unknown service token",
    403: "The call needs the admin scope",
    404: "No contact is known for the customer",
    422: "Invalid request (e.g. a link already expired, or valid more than 24 hours), or the"
    " customer has no email address",
    503: "No secrets key is configured: a sign-in link is never stored in clear",
}


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"description": _MEANINGS[status], "content": {PROBLEM_JSON: {}}}
        for status in statuses
    }


@router.get("/{customer_id}/notifications")
async def get_notifications(
    customer_id: Annotated[Identifier, Path()],
    runtime: RuntimeDep,
    _: ReadScope,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> NotificationLogOut:
    """The messages for one customer, newest first, with their delivery status."""
    return await customers.delivery_log(runtime.engine, customer_id, limit)


@router.post(
    "/{customer_id}/sign-in-link",
    status_code=202,
    response_model=SignInLinkOut,
    responses=_problems(401, 403, 404, 422, 503),
)
async def post_sign_in_link(
    customer_id: Annotated[Identifier, Path()],
    body: SignInLinkIn,
    runtime: RuntimeDep,
    clock: ClockDep,
    _: AdminScope,
) -> SignInLinkOut:
    """Emails the member the wallet's one-time sign-in link (template `sign_in`, in their
    language, its end told in their time zone), now: neither quiet hours nor the daily cap
    hold it, and it needs no marketing consent. The link is stored sealed and removed once the
    message is settled; a link expired before it goes out is not sent. The same link again
    (a retry) answers the same notification id and sends nothing more."""
    return await customers.send_sign_in_link(runtime.engine, customer_id, body, clock)
