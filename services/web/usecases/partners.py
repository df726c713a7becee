"""Partners in the console (admin; ingest `GET/POST /v1/admin/partners`, `rotate-key`,
`revoke`). A new or rotated partner's API key and signing secret come back once: the page
that answers the form shows them (no-store) and nothing else keeps them — not a URL, not a
log, not the web's database."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.web.ports import Services
from services.web.usecases.campaigns import (
    IDENTIFIER,
    Fields,
    FormInvalid,
    Listing,
    Outcome,
    listing_of,
    outcome_of,
    refused,
    without_empty,
)

PATH = "/v1/admin/partners"


@dataclass(frozen=True)
class Credentials:
    """Shown once, on the page answering the form."""

    partner_id: str
    name: str
    api_key: str
    signing_secret: str


async def list_partners(services: Services, actor: str) -> Listing:
    return listing_of(await services.get("ingest", PATH, actor=actor))


def credentials_of(outcome: Outcome) -> Credentials | None:
    body = outcome.body if outcome.ok and isinstance(outcome.body, Mapping) else None
    if body is None or not all(isinstance(body.get(k), str) for k in ("api_key", "signing_secret")):
        return None
    return Credentials(
        str(body.get("partner_id", "")),
        str(body.get("name", "")),
        body["api_key"],
        body["signing_secret"],
    )


async def create_partner(
    services: Services, actor: str, form: Mapping[str, str], idempotency_key: str
) -> tuple[Outcome, Credentials | None]:
    fields = Fields(form)
    try:
        body = without_empty(
            {
                "name": fields.text("name", required=True),
                "partner_id": fields.matching("partner_id", IDENTIFIER),
            }
        )
    except FormInvalid as error:
        return refused(error), None
    answer = await services.send(
        "POST", "ingest", PATH, actor=actor, body=body, idempotency_key=idempotency_key
    )
    outcome = outcome_of(answer)
    return Outcome(outcome.status, detail=outcome.detail), credentials_of(outcome)


async def rotate_key(
    services: Services, actor: str, partner_id: str
) -> tuple[Outcome, Credentials | None]:
    answer = await services.send("POST", "ingest", f"{PATH}/{partner_id}/rotate-key", actor=actor)
    outcome = outcome_of(answer)
    return Outcome(outcome.status, detail=outcome.detail), credentials_of(outcome)


async def revoke_partner(services: Services, actor: str, partner_id: str) -> Outcome:
    answer = await services.send("POST", "ingest", f"{PATH}/{partner_id}/revoke", actor=actor)
    return Outcome(answer.status, detail=outcome_of(answer).detail)
