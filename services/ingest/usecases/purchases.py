"""Purchases and refunds, reported by a partner's POS.

A purchase is decided with the other purchases of its group and committed with them
(`purchase_groups`: the hot path); a refund is a call on its own, through `answers.keyed`."""

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection

from services.ingest.adapters.repositories.api import purchase_repository
from services.ingest.api.schemas import AcceptedOut, PurchaseIn, RefundIn
from services.ingest.domain.model import (
    Accepted,
    LineItem,
    Partner,
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
from services.ingest.ports import StoredPurchase, StoredRefund
from services.ingest.settings import IngestSettings
from services.ingest.usecases.answers import Answer, accept, keyed, replay_or_conflict, source_of
from services.ingest.usecases.purchase_groups import PurchaseCall, PurchaseGroups
from shared.messaging import events
from shared.messaging.events import CloudEvent, new_event
from shared.runtime.process import Runtime
from shared.web.idempotency import IdempotentCall
from shared.web.receipt_links import sign_receipt_link

# How long a receipt's wallet link signs its member in.
RECEIPT_LINK_VALIDITY = timedelta(days=30)


async def report_purchase(
    groups: PurchaseGroups,
    settings: IngestSettings,
    partner: Partner,
    purchase: PurchaseIn,
    call: IdempotentCall,
    now: datetime,
) -> Answer:
    event = _purchase_completed(partner.partner_id, purchase, now)
    stored = StoredPurchase(
        partner_id=partner.partner_id,
        purchase_id=purchase.purchase_id,
        customer_id=purchase.customer_id,
        currency=purchase.currency,
        total=purchase.total,
        refunded=Decimal(0),
        occurred_at=purchase.occurred_at,
        accepted=Accepted(purchase_fingerprint(purchase), event.id),
    )
    # Stored or not, it is decided with the other purchases of its group (purchase_groups).
    return await groups.submit(
        PurchaseCall(
            stored,
            event,
            call,
            refusal=_refusal(purchase, now, settings),
            wallet_url=wallet_link(settings, purchase.customer_id, purchase.purchase_id, now),
        )
    )


def wallet_link(
    settings: IngestSettings, customer_id: str, purchase_id: str, now: datetime
) -> str | None:
    """The member wallet's link for a purchase's receipt, valid `RECEIPT_LINK_VALIDITY` from
    `now`; None unless both the receipt secret and the wallet's URL are set."""
    if settings.receipt_secret is None or settings.wallet_url is None:
        return None
    query = sign_receipt_link(
        settings.receipt_secret.get_secret_value(),
        customer_id,
        purchase_id,
        now + RECEIPT_LINK_VALIDITY,
    )
    return f"{settings.wallet_url.rstrip('/')}/wallet/receipt?{query}"


def purchase_fingerprint(purchase: PurchaseIn) -> str:
    """The purchase's request hash. A purchase without `redemption_id` is hashed as it was
    before the field existed, so a retry spanning an upgrade is still recognised as one."""
    document = purchase.model_dump(mode="json")
    if document.get("redemption_id") is None:
        document.pop("redemption_id", None)
    return request_hash(document)


def _purchase_completed(partner_id: str, purchase: PurchaseIn, now: datetime) -> CloudEvent:
    return new_event(
        events.PurchaseCompleted(
            purchase_id=purchase.purchase_id,
            partner_id=partner_id,
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
            redemption_id=purchase.redemption_id,
        ),
        source=source_of(partner_id),
        subject=purchase.customer_id,
        time=now,
    )


def _refusal(purchase: PurchaseIn, now: datetime, settings: IngestSettings) -> RuleViolation | None:
    """What the program's rules say against this purchase, if anything."""
    try:
        ensure_program_currency(purchase.currency, settings.currency)
        _ensure_reported_in_time(purchase.occurred_at, now, settings, what="the purchase's")
        if purchase.items is not None:
            ensure_items_have_value(
                LineItem(quantity=item.quantity, unit_price=item.unit_price)
                for item in purchase.items
            )
    except RuleViolation as violation:
        return violation
    return None


def _ensure_reported_in_time(
    occurred_at: datetime, now: datetime, settings: IngestSettings, *, what: str
) -> None:
    ensure_not_in_future(
        occurred_at, now, timedelta(seconds=settings.max_clock_skew_seconds), what=what
    )
    ensure_not_too_old(occurred_at, now, timedelta(days=settings.max_purchase_age_days), what=what)


async def report_refund(
    runtime: Runtime,
    settings: IngestSettings,
    partner: Partner,
    purchase_id: str,
    refund: RefundIn,
    call: IdempotentCall,
    now: datetime,
) -> Answer:
    fingerprint = request_hash({"purchase_id": purchase_id, **refund.model_dump(mode="json")})
    what = f"refund {refund.refund_id!r}"
    hint = "report a different refund under a new refund_id"

    async def work(conn: AsyncConnection) -> AcceptedOut:
        repository = purchase_repository(conn)
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
        _ensure_reported_in_time(refund.occurred_at, now, settings, what="the refund's")
        ensure_refund_after_purchase(refund.occurred_at, purchase.occurred_at)
        refunded = refunded_after(purchase.total, purchase.refunded, refund.amount)
        event = _purchase_refunded(partner.partner_id, purchase_id, purchase, refund, now)
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
        return await accept(conn, event, customer_id=purchase.customer_id, clock=runtime.clock)

    return await keyed(runtime, call, work)


def _purchase_refunded(
    partner_id: str, purchase_id: str, purchase: StoredPurchase, refund: RefundIn, now: datetime
) -> CloudEvent:
    return new_event(
        events.PurchaseRefunded(
            refund_id=refund.refund_id,
            purchase_id=purchase_id,
            partner_id=partner_id,
            customer_id=purchase.customer_id,
            occurred_at=refund.occurred_at,
            amount=refund.amount,
        ),
        source=source_of(partner_id),
        subject=purchase.customer_id,
        time=now,
    )
