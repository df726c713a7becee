"""Partner webhooks: where a partner is told, signed, about the customers it enrolled. The
signing secret is made here and shown once, in the answer that creates it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.notifications.adapters.repositories.api import api_repository
from services.notifications.adapters.webhook_addresses import WebhookGuard, WebhookRefused
from services.notifications.api.schemas import WebhookIn, WebhookOut
from services.notifications.domain.model import PartnerWebhook
from shared.clock import Clock
from shared.storage.transactions import in_transaction, read_snapshot
from shared.web.problems import Problem


@dataclass(frozen=True)
class Registration:
    answer: WebhookOut
    created: bool  # then the answer carries the secret


def _not_found(partner_id: str) -> Problem:
    return Problem(
        404, "Not found", f"partner {partner_id!r} has no webhook", slug="unknown-webhook"
    )


async def register_webhook(
    engine: AsyncEngine, partner_id: str, body: WebhookIn, clock: Clock, guard: WebhookGuard
) -> Registration:
    """Registers the partner's webhook with a new secret, or points an existing one to a new
    URL, its secret unchanged; a 422 naming the field for a URL this service must not call
    (`domain/webhook_urls.py`), before anything is stored."""
    try:
        await guard.check_registration(body.url)
    except WebhookRefused as refused:
        raise Problem(
            422,
            "Invalid request",
            f"url: {refused.reason}",
            slug="invalid-request",
            errors=[{"loc": ["body", "url"], "msg": refused.reason}],
        ) from None

    async def register(conn: AsyncConnection) -> Registration:
        notifications = api_repository(conn)
        now = clock.now()
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
        return Registration(answer, created)

    return await in_transaction(engine, register)


async def get_webhook(engine: AsyncEngine, partner_id: str) -> WebhookOut:
    """The partner's webhook, without its secret."""
    async with read_snapshot(engine) as conn:
        stored = await api_repository(conn).webhook(partner_id)
    if stored is None:
        raise _not_found(partner_id)
    return WebhookOut(partner_id=partner_id, url=stored.url, created_at=stored.created_at)


async def remove_webhook(engine: AsyncEngine, partner_id: str) -> None:
    """Removes the webhook: the calls still waiting for it are suppressed when they fall due."""
    removed = await in_transaction(
        engine, lambda conn: api_repository(conn).remove_webhook(partner_id)
    )
    if not removed:
        raise _not_found(partner_id)
