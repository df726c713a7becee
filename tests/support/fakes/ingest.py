"""What ingest's tests share about its group commit: a purchase call as the purchases use case
hands it to its group (`usecases.purchase_groups`), built without HTTP; its event comes from
`tests.support.factories`."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from services.ingest.domain.model import Accepted, RuleViolation, request_hash
from services.ingest.ports import StoredPurchase
from services.ingest.usecases.purchase_groups import PurchaseCall
from shared.web.idempotency import IdempotentCall
from tests.support import factories


def purchase_call(
    partner_id: str,
    customer_id: str,
    purchase_id: str,
    *,
    total: str = "12.50",
    key: str | None = None,
    refusal: RuleViolation | None = None,
) -> PurchaseCall:
    """A call whose fingerprint is that of (purchase_id, customer_id, total): the same three
    again is a retry, another total under the same purchase_id a conflict."""
    body = {"purchase_id": purchase_id, "customer_id": customer_id, "total": total}
    now = datetime.now(UTC)
    event = factories.purchase(
        customer_id, total, at=now, purchase_id=purchase_id, partner_id=partner_id
    )
    fingerprint = request_hash(body)
    return PurchaseCall(
        StoredPurchase(
            partner_id=partner_id,
            purchase_id=purchase_id,
            customer_id=customer_id,
            currency="EUR",
            total=Decimal(total),
            refunded=Decimal(0),
            occurred_at=now,
            accepted=Accepted(fingerprint, event.id),
        ),
        event,
        IdempotentCall(key=key, scope=f"scope-{partner_id}", request_hash=fingerprint),
        refusal=refusal,
    )
