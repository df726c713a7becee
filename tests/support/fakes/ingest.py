"""What ingest's tests share about its group commit: a purchase call as the purchases use case
hands it to its group (`usecases.purchase_groups`), built without HTTP; its event comes from
`tests.support.factories`; and a fake of points' API for the till calls."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from services.ingest.domain.model import Accepted, RuleViolation, request_hash
from services.ingest.domain.till import PointsAnswer
from services.ingest.ports import PointsGateway, StoredPurchase, TillCall
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


class FakePointsGateway:
    """Points' API for the till use cases: records each call and answers what the test set
    (`answers`, in order, the last one again), or raises what it set (`failure`)."""

    def __init__(self, *answers: PointsAnswer, failure: Exception | None = None) -> None:
        self.answers = list(answers) or [json_answer(200, {})]
        self.failure = failure
        self.calls: list[TillCall] = []

    async def call(self, call: TillCall) -> PointsAnswer:
        self.calls.append(call)
        if self.failure is not None:
            raise self.failure
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def json_answer(
    status: int,
    document: object,
    *,
    content_type: str = "application/json",
    retry_after: str | None = None,
    replayed: str | None = None,
) -> PointsAnswer:
    return PointsAnswer(
        status=status,
        content_type=content_type,
        body=json.dumps(document).encode(),
        retry_after=retry_after,
        replayed=replayed,
    )


def _points_gateway(fake: FakePointsGateway) -> PointsGateway:
    return fake  # mypy checks here that the fake implements the port
