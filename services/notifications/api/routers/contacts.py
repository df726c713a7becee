"""The members behind an email address, for the wallet's sign-in (admin only: it reads
personal data)."""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.notifications.api.deps import AdminScope, RuntimeDep
from services.notifications.api.schemas import ContactsOut
from services.notifications.usecases import contacts
from shared.bounds import Email
from shared.web.problems import PROBLEM_JSON

router = APIRouter(prefix="/v1/contacts", tags=["contacts"])

_MEANINGS = {
    401: "A missing or unknown service token",
    403: "The call needs the admin scope",
    422: "A missing or malformed email address",
}


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"description": _MEANINGS[status], "content": {PROBLEM_JSON: {}}}
        for status in statuses
    }


@router.get("", response_model=ContactsOut, responses=_problems(401, 403, 422))
async def find_contacts(
    email: Annotated[Email, Query()],
    runtime: RuntimeDep,
    _: AdminScope,
) -> ContactsOut:
    """The members whose current contact email is `email`, compared whatever its case, in id
    order (at most 100); an address nobody has answers an empty list."""
    return await contacts.customers_with_email(runtime.engine, email)
