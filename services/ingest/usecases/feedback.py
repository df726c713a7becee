"""Members' feedback, given at a partner's POS or app (product.md §8).

One call through `answers.keyed`: the feedback's id is its natural key (the same body again is
answered as the first time, another body under it is a 409), the member must be enrolled and
not erased (like a purchase's, whoever enrolled them), and a `purchase_id` must be one this
partner reported for the member (like a refund's). The event goes to the compacted feedback
topic keyed by the feedback (`events.feedback_key`), so an erasure removes each of the
member's comments from Kafka with a tombstone of its key (`feedback_erasure`); ingest stores
the ids, never the comment."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from services.ingest.adapters import tables
from services.ingest.adapters.repositories.api import purchase_repository
from services.ingest.adapters.repositories.feedback import SqlFeedback
from services.ingest.api.schemas import AcceptedOut, FeedbackIn
from services.ingest.domain.model import Accepted, Partner, UnknownPurchase, request_hash
from services.ingest.usecases.answers import Answer, keyed, replay_or_conflict, source_of
from services.ingest.usecases.customers import erased_customer, unknown_customer
from shared.messaging import events
from shared.messaging.events import CloudEvent, new_event
from shared.messaging.outbox import Outbox
from shared.runtime.process import Runtime
from shared.web.idempotency import IdempotentCall

log = logging.getLogger(__name__)

HINT = "give other feedback under a new feedback_id"


async def give_feedback(
    runtime: Runtime, partner: Partner, body: FeedbackIn, call: IdempotentCall, now: datetime
) -> Answer:
    fingerprint = request_hash({"partner_id": partner.partner_id, **body.model_dump(mode="json")})
    what = f"feedback {body.feedback_id!r}"
    event = _feedback_received(partner.partner_id, body, now)

    async def work(conn: AsyncConnection) -> AcceptedOut:
        repository = SqlFeedback(conn)
        member = await repository.member_for_share(body.customer_id)
        previous = await repository.accepted(partner.partner_id, body.feedback_id)
        if previous is not None:
            return replay_or_conflict(previous, fingerprint, what=what, hint=HINT)
        if not member.known:
            raise unknown_customer(
                f"customer {body.customer_id!r} is not enrolled: enrol with POST /v1/customers"
            )
        if member.erased:
            raise erased_customer(body.customer_id)
        if body.purchase_id is not None:
            await _ensure_purchase_of(conn, partner.partner_id, body.purchase_id, body.customer_id)
        accepted = Accepted(fingerprint, event.id)
        if not await repository.add(
            partner.partner_id, body.feedback_id, body.customer_id, accepted, now
        ):
            # The same feedback_id was committed concurrently.
            previous = await repository.accepted(partner.partner_id, body.feedback_id)
            assert previous is not None
            return replay_or_conflict(previous, fingerprint, what=what, hint=HINT)
        key = events.feedback_key(partner.partner_id, body.feedback_id)
        await Outbox(conn, tables.outbox, runtime.clock).add(event, key=key)
        return AcceptedOut(event_id=event.id)

    return await keyed(runtime, call, work)


async def _ensure_purchase_of(
    conn: AsyncConnection, partner_id: str, purchase_id: str, customer_id: str
) -> None:
    purchase = await purchase_repository(conn).purchase(partner_id, purchase_id)
    if purchase is None or purchase.customer_id != customer_id:
        raise UnknownPurchase(
            f"purchase {purchase_id!r} was never reported by this partner for customer "
            f"{customer_id!r}: feedback names a purchase of the member, or none"
        )


def _feedback_received(partner_id: str, body: FeedbackIn, now: datetime) -> CloudEvent:
    return new_event(
        events.FeedbackReceived(
            feedback_id=body.feedback_id,
            partner_id=partner_id,
            store_id=body.store_id,
            customer_id=body.customer_id,
            purchase_id=body.purchase_id,
            kind=body.kind,
            score=body.score,
            comment=body.comment,
            given_at=now,
        ),
        source=source_of(partner_id),
        subject=body.customer_id,
        time=now,
    )
