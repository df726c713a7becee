"""Purchases and refunds, reported by a partner's POS."""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from services.ingest.adapters import tables
from services.ingest.adapters.repository import SqlIngestRepository, StoredPurchase, StoredRefund
from services.ingest.api.deps import PosCallDep
from services.ingest.api.purchase_groups import PurchaseCall
from services.ingest.api.replies import accept, problem_responses, replay_or_conflict
from services.ingest.api.schemas import AcceptedOut, Identifier, PurchaseIn, RefundIn
from services.ingest.domain.model import (
    Accepted,
    LineItem,
    RuleViolation,
    UnknownPurchase,
    ensure_items_have_value,
    ensure_not_in_future,
    ensure_not_too_old,
    ensure_program_currency,
    ensure_refund_after_purchase,
    refunded_after,
    request_hash,
)
from services.ingest.settings import IngestSettings
from shared.messaging import events
from shared.messaging.events import new_event
from shared.storage.transactions import in_transaction
from shared.web.strict_json import StrictJsonRoute

router = APIRouter(prefix="/v1/purchases", tags=["purchases"], route_class=StrictJsonRoute)


@router.post(
    "", status_code=202, response_model=AcceptedOut, responses=problem_responses(401, 409, 422)
)
async def report_purchase(purchase: PurchaseIn, pos: PosCallDep) -> AcceptedOut | JSONResponse:
    partner, settings, call, groups, now = (
        pos.partner,
        pos.settings,
        pos.idempotency,
        pos.groups,
        pos.now,
    )
    event = new_event(
        events.PurchaseCompleted(
            purchase_id=purchase.purchase_id,
            partner_id=partner.partner_id,
            store_id=purchase.store_id,
            customer_id=purchase.customer_id,
            occurred_at=purchase.occurred_at,
            currency=purchase.currency,
            total=purchase.total,
            items=None
            if purchase.items is None
            else [
                events.PurchaseItem(
                    sku=item.sku,
                    category=item.category,
                    quantity=item.quantity,
                    unit_price=item.unit_price,
                )
                for item in purchase.items
            ],
        ),
        source=f"ingest/partner/{partner.partner_id}",
        subject=purchase.customer_id,
        time=now,
    )
    stored = StoredPurchase(
        partner_id=partner.partner_id,
        purchase_id=purchase.purchase_id,
        customer_id=purchase.customer_id,
        currency=purchase.currency,
        total=purchase.total,
        refunded=Decimal(0),
        occurred_at=purchase.occurred_at,
        accepted=Accepted(request_hash(purchase.model_dump(mode="json")), event.id),
    )
    # Stored or not, it is decided with the other purchases of its group (purchase_groups).
    return await groups.submit(
        PurchaseCall(stored, event, call, refusal=_refusal(purchase, now, settings))
    )


def _refusal(purchase: PurchaseIn, now: datetime, settings: IngestSettings) -> RuleViolation | None:
    """What the program's rules say against this purchase, if anything."""
    try:
        ensure_program_currency(purchase.currency, settings.currency)
        ensure_not_in_future(
            purchase.occurred_at,
            now,
            timedelta(seconds=settings.max_clock_skew_seconds),
            what="the purchase's",
        )
        ensure_not_too_old(
            purchase.occurred_at,
            now,
            timedelta(days=settings.max_purchase_age_days),
            what="the purchase's",
        )
        if purchase.items is not None:
            ensure_items_have_value(
                LineItem(quantity=item.quantity, unit_price=item.unit_price)
                for item in purchase.items
            )
    except RuleViolation as violation:
        return violation
    return None


@router.post(
    "/{purchase_id}/refunds",
    status_code=202,
    response_model=AcceptedOut,
    responses=problem_responses(401, 409, 422),
)
async def report_refund(
    purchase_id: Annotated[Identifier, Path()], refund: RefundIn, pos: PosCallDep
) -> AcceptedOut | JSONResponse:
    partner, runtime, settings, call = pos.partner, pos.runtime, pos.settings, pos.idempotency
    clock, now = runtime.clock, pos.now
    fingerprint = request_hash({"purchase_id": purchase_id, **refund.model_dump(mode="json")})
    what = f"refund {refund.refund_id!r}"
    hint = "report a different refund under a new refund_id"

    async def decide(conn: AsyncConnection) -> AcceptedOut | JSONResponse:
        if (replayed := await call.replay(conn, tables.idempotency_keys)) is not None:
            return replayed
        repository = SqlIngestRepository(conn)
        # Locked first: concurrent refunds of one purchase are decided one after the other,
        # each seeing what the previous ones refunded, so together they never exceed the
        # total, and a retry racing its first attempt finds it below.
        purchase = await repository.purchase(partner.partner_id, purchase_id, for_update=True)
        previous = await repository.refund(partner.partner_id, refund.refund_id)
        if previous is not None:
            return replay_or_conflict(previous.accepted, fingerprint, what=what, hint=hint)
        if purchase is None:
            raise UnknownPurchase(
                f"purchase {purchase_id!r} was never reported by this partner: "
                "only a reported purchase can be refunded"
            )
        ensure_not_in_future(
            refund.occurred_at,
            now,
            timedelta(seconds=settings.max_clock_skew_seconds),
            what="the refund's",
        )
        ensure_not_too_old(
            refund.occurred_at,
            now,
            timedelta(days=settings.max_purchase_age_days),
            what="the refund's",
        )
        ensure_refund_after_purchase(refund.occurred_at, purchase.occurred_at)
        refunded = refunded_after(purchase.total, purchase.refunded, refund.amount)
        event = new_event(
            events.PurchaseRefunded(
                refund_id=refund.refund_id,
                purchase_id=purchase_id,
                partner_id=partner.partner_id,
                customer_id=purchase.customer_id,
                occurred_at=refund.occurred_at,
                amount=refund.amount,
            ),
            source=f"ingest/partner/{partner.partner_id}",
            subject=purchase.customer_id,
            time=now,
        )
        stored = StoredRefund(
            partner_id=partner.partner_id,
            refund_id=refund.refund_id,
            purchase_id=purchase_id,
            customer_id=purchase.customer_id,
            amount=refund.amount,
            occurred_at=refund.occurred_at,
            accepted=Accepted(fingerprint, event.id),
        )
        if not await repository.add_refund(stored, refunded):
            # The same refund_id was committed concurrently for another purchase.
            previous = await repository.refund(partner.partner_id, refund.refund_id)
            assert previous is not None
            return replay_or_conflict(previous.accepted, fingerprint, what=what, hint=hint)
        return await accept(conn, event, customer_id=purchase.customer_id, call=call, clock=clock)

    answer = await in_transaction(runtime.engine, decide)
    runtime.relay.notify()  # a replay wakes the relay for nothing, which costs nothing
    return answer
