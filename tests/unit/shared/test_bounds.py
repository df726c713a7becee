"""The bounds shared by ingest's edge and the event models, and the edge's own guards."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Header
from pydantic import ValidationError
from starlette.types import Message, Receive, Scope, Send

from shared import bounds
from shared.messaging import events
from shared.web.body_limit import BodyLimit
from shared.web.openapi import completed
from shared.web.strict_json import loads_strictly


class TestNumbers:
    def test_the_largest_purchase_cannot_overflow_points_32_bit_ledger(self) -> None:
        most = bounds.MAX_AMOUNT * bounds.MAX_TIER_MULTIPLIER * bounds.MAX_CAMPAIGN_MULTIPLIER
        assert most < bounds.MAX_POINTS

    def test_the_largest_basket_fits_a_numeric_14_2(self) -> None:
        basket = bounds.MAX_ITEMS * bounds.MAX_QUANTITY * bounds.MAX_UNIT_PRICE
        assert basket < Decimal("999999999999.99")


def purchase(**changes: Any) -> dict[str, Any]:
    return {
        "purchase_id": "p-1",
        "partner_id": "demo",
        "customer_id": "c-1",
        "occurred_at": "2026-11-22T10:15:00Z",
        "currency": "EUR",
        "total": "49.99",
        **changes,
    }


class TestEventModels:
    """An event already on a topic beyond the bounds fails validation (and is dead-lettered
    by the consumer) instead of crashing it or breaking a customer further down."""

    @pytest.mark.parametrize(
        "changes",
        [
            {"total": "999999999999.99"},
            {"occurred_at": "0001-01-01T00:00:00Z"},
            {"occurred_at": "0001-01-01T00:00:00+01:00"},
            {"occurred_at": "9999-12-31T23:59:59-01:00"},
            {"customer_id": "c\x00"},
            {"items": [{"sku": "a\x00", "quantity": "1", "unit_price": "1"}]},
            {"items": [{"sku": "a", "quantity": "1", "unit_price": "100000.01"}]},
        ],
    )
    def test_a_purchase_beyond_the_bounds_is_a_validation_failure(
        self, changes: dict[str, Any]
    ) -> None:
        with pytest.raises(ValidationError):
            events.PurchaseCompleted.model_validate(purchase(**changes))

    def test_inside_an_amount_may_be_a_number_and_a_time_any_aware_spelling(self) -> None:
        # Tolerant inside about spelling, strict about range.
        parsed = events.PurchaseCompleted.model_validate(
            purchase(total=49.9, occurred_at="2026-11-22T11:15:00+01:00")
        )
        assert parsed.total == Decimal("49.90")
        assert parsed.occurred_at == datetime(2026, 11, 22, 10, 15, tzinfo=UTC)

    def test_an_envelope_whose_time_overflows_is_a_validation_failure(self) -> None:
        with pytest.raises(ValidationError):
            events.CloudEvent.model_validate(
                {
                    "id": "e",
                    "source": "s",
                    "type": events.CUSTOMER_ERASED,
                    "subject": "c",
                    "time": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
                    "data": {"customer_id": "c"},
                }
            )

    def test_points_fit_the_ledger_column(self) -> None:
        with pytest.raises(ValidationError):
            events.PointsExpired(customer_id="c", points=2**31)


class TestStrictJson:
    def test_a_duplicate_key_is_refused_at_any_depth(self) -> None:
        with pytest.raises(ValueError, match="'total' appears more than once"):
            loads_strictly(b'{"total": "1.00", "total": "999.00"}')
        with pytest.raises(ValueError, match="'sku'"):
            loads_strictly(b'{"items": [{"sku": "a", "sku": "b"}]}')

    @pytest.mark.parametrize("body", [b'{"total": NaN}', b'{"total": Infinity}', b"{", b"\xff"])
    def test_what_json_loads_lets_by_is_refused(self, body: bytes) -> None:
        with pytest.raises(ValueError):
            loads_strictly(body)

    def test_fractions_are_read_exactly(self) -> None:
        assert loads_strictly(b'{"q": 0.1, "n": 2, "e": 1e2}') == {
            "q": Decimal("0.1"),
            "n": 2,
            "e": Decimal("1E+2"),
        }


async def _call(
    app: BodyLimit, chunks: list[bytes], headers: list[tuple[bytes, bytes]]
) -> tuple[int, dict[str, Any], int]:
    """Status, JSON body of the answer, and how many chunks the client was asked for."""
    pending = list(chunks)
    asked = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal asked
        asked += 1
        body = pending.pop(0) if pending else b""
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    await app(scope, receive, send)
    status = sent[0]["status"]
    return status, json.loads(b"".join(m.get("body", b"") for m in sent[1:])), asked


async def _reading_app(scope: Scope, receive: Receive, send: Send) -> None:
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": json.dumps({"read": size}).encode()})


class TestBodyLimit:
    async def test_a_declared_length_over_the_limit_is_refused_before_reading(self) -> None:
        limited = BodyLimit(_reading_app, max_body_bytes=1024)
        status, problem, asked = await _call(
            limited, [b"x" * 2048], [(b"content-length", b"104857600")]
        )
        assert (status, asked) == (413, 0)
        assert problem["type"] == "urn:fedelta:problem:payload-too-large"

    async def test_a_streamed_body_is_cut_off_as_soon_as_it_passes_the_limit(self) -> None:
        limited = BodyLimit(_reading_app, max_body_bytes=1024)
        status, problem, asked = await _call(limited, [b"x" * 600] * 100, [])
        assert (status, asked) == (413, 2)
        assert problem["status"] == 413

    async def test_a_body_within_the_limit_passes(self) -> None:
        limited = BodyLimit(_reading_app, max_body_bytes=1024)
        status, answer, _ = await _call(
            limited, [b"x" * 512, b"y" * 512], [(b"content-length", b"1024")]
        )
        assert (status, answer) == (200, {"read": 1024})

    async def test_an_absurd_content_length_is_refused_without_converting_it(self) -> None:
        limited = BodyLimit(_reading_app, max_body_bytes=1024)
        status, _, asked = await _call(limited, [b""], [(b"content-length", b"9" * 500)])
        assert (status, asked) == (413, 0)


class TestOpenApi:
    def document(self) -> dict[str, Any]:
        app = FastAPI()

        @app.post("/v1/things/{thing_id}", status_code=202)
        async def post_thing(
            thing_id: bounds.Identifier,
            body: dict[str, str],
            authorization: Annotated[str | None, Header()] = None,
            signature: Annotated[str | None, Header(alias="Fedelta-Signature")] = None,
        ) -> dict[str, str]:
            return {}

        @app.get("/v1/things")
        async def list_things(authorization: Annotated[str | None, Header()] = None) -> list[str]:
            return []

        return completed(app.openapi())

    def test_partner_calls_are_secured_by_key_and_signature_not_by_header_parameters(
        self,
    ) -> None:
        document = self.document()
        operation = document["paths"]["/v1/things/{thing_id}"]["post"]
        assert operation["security"] == [{"partnerApiKey": [], "partnerSignature": []}]
        assert [p["name"] for p in operation["parameters"]] == ["thing_id"]
        listing = document["paths"]["/v1/things"]["get"]
        assert listing["security"] == [{"serviceToken": []}]
        assert "parameters" not in listing
        schemes = document["components"]["securitySchemes"]
        assert schemes["partnerSignature"] == {
            "type": "apiKey",
            "in": "header",
            "name": "Fedelta-Signature",
            "description": schemes["partnerSignature"]["description"],
        }

    def test_errors_are_documented_as_problem_json(self) -> None:
        document = self.document()
        responses = document["paths"]["/v1/things/{thing_id}"]["post"]["responses"]
        assert {"400", "401", "403", "404", "409", "413", "422"} <= set(responses)
        for status in ("400", "401", "403", "404", "409", "413", "422"):
            assert responses[status]["content"] == {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            }
        assert "HTTPValidationError" not in document["components"]["schemas"]
        assert document["components"]["schemas"]["Problem"]["required"] == [
            "type",
            "title",
            "status",
            "detail",
        ]


def test_the_tier_answer_holds_any_spend_ingest_can_accept() -> None:
    # Was a 500 for ever after two purchases of 999,999,999,999.99 (NUMERIC(14, 2) max).
    from services.tiers.api.schemas import CustomerTierOut

    moment = datetime(2026, 11, 22, tzinfo=UTC)
    answer = CustomerTierOut(
        customer_id="c-1",
        tier="platinum",
        since=moment,
        qualifying_spend=Decimal("1999999999999.98"),
        next_tier=None,
        amount_to_next_tier=Decimal("-3.5"),
        review_at=moment,
        amount_to_keep_tier=Decimal(0),
    )
    document = json.loads(answer.model_dump_json())
    assert (document["qualifying_spend"], document["amount_to_next_tier"]) == (
        "1999999999999.98",
        "-3.50",
    )
