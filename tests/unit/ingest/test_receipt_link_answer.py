"""A purchase's answer carries its receipt's wallet link (issue 22) when ingest has both the
receipt secret and the wallet's URL: signed for its customer and purchase, valid 30 days, the
same in a retry's answer; without them the answer is what it always was."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.responses import JSONResponse
from pydantic import SecretStr, ValidationError
from starlette.datastructures import QueryParams

from services.ingest.api.deps import PosCall, pos_call
from services.ingest.api.fast_purchases import _send_accepted
from services.ingest.api.schemas import AcceptedOut, PurchaseAcceptedOut, PurchaseIn
from services.ingest.domain.model import Partner
from services.ingest.settings import IngestSettings
from services.ingest.usecases import purchases
from services.ingest.usecases.purchase_groups import PurchaseCall, _decide, _Decisions
from shared.web.idempotency import IdempotentCall
from shared.web.receipt_links import ReceiptLinkError, verify_receipt_link
from tests.support.points import NOW
from tests.support.service_apps import service_app
from tests.support.stack import sha256_hex

SECRET = "receipt-secret-0123456789abcdef-0123456789"
WALLET = "http://127.0.0.1:8086"
PARTNER = Partner("demo", "Demo", "hash", "signing-secret", NOW)


def settings(**overrides: Any) -> IngestSettings:
    values: dict[str, Any] = {
        "database_url": "postgresql+asyncpg://u:p@localhost:5432/ingest",
        "kafka_bootstrap_servers": "localhost:9092",
        "admin_token_sha256": sha256_hex("ingest-admin-token-0123456789abcdef"),
        "receipt_secret": SECRET,
        "wallet_url": WALLET,
    }
    return IngestSettings(**(values | overrides))


def purchase(purchase_id: str = "p-1") -> PurchaseIn:
    return PurchaseIn.model_validate(
        {
            "purchase_id": purchase_id,
            "customer_id": "c-1",
            "occurred_at": (NOW - timedelta(minutes=5)).isoformat(),
            "currency": "EUR",
            "total": "49.99",
        }
    )


class DecidingGroups:
    """The group commit's decisions without its transaction: each call decided in turn."""

    def __init__(self) -> None:
        self.decisions = _Decisions(kept={}, accepted={}, enrolled={"c-1"})

    async def submit(self, call: PurchaseCall) -> Any:
        outcome = _decide(call, self.decisions)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


async def report(groups: DecidingGroups, ingest: IngestSettings, key: str | None = None) -> Any:
    call = IdempotentCall(key=key, scope="scope-demo", request_hash="h")
    return await purchases.report_purchase(
        groups,  # type: ignore[arg-type]
        ingest,
        PARTNER,
        purchase(),
        call,
        NOW,
    )


def link_params(url: str) -> QueryParams:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == WALLET
    assert parts.path == "/wallet/receipt"
    return QueryParams(parts.query)


async def test_the_answer_carries_a_signed_wallet_link_valid_30_days() -> None:
    answer = await report(DecidingGroups(), settings())
    assert isinstance(answer, PurchaseAcceptedOut) and answer.wallet_url is not None
    params = link_params(answer.wallet_url)
    assert verify_receipt_link(SECRET, params, NOW) == ("c-1", "p-1")
    assert int(params["e"]) == int((NOW + timedelta(days=30)).timestamp())
    with pytest.raises(ReceiptLinkError, match="expired"):
        verify_receipt_link(SECRET, params, NOW + timedelta(days=30))


@pytest.mark.parametrize(
    "unset",
    [{"receipt_secret": None}, {"wallet_url": None}, {"receipt_secret": None, "wallet_url": None}],
)
async def test_without_both_settings_the_answer_is_as_it_was(unset: dict[str, Any]) -> None:
    groups = DecidingGroups()
    answer = await report(groups, settings(**unset))
    assert type(answer) is AcceptedOut
    (call,) = groups.decisions.new
    assert answer == AcceptedOut(event_id=call.event.id)


async def test_a_retry_gets_the_link_again() -> None:
    groups = DecidingGroups()
    first = await report(groups, settings())
    again = await report(groups, settings())  # the same purchase_id and body: a retry
    assert isinstance(again, PurchaseAcceptedOut)
    assert (again.event_id, again.wallet_url) == (first.event_id, first.wallet_url)


async def test_a_kept_answer_replays_with_its_link() -> None:
    groups = DecidingGroups()
    first = await report(groups, settings(), key="k-1")
    replayed = await report(groups, settings(), key="k-1")
    assert isinstance(replayed, JSONResponse)
    assert json.loads(bytes(replayed.body)) == {
        "event_id": first.event_id,
        "wallet_url": first.wallet_url,
    }


async def _rendered(answer: AcceptedOut) -> dict[str, Any]:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    await _send_accepted(answer, send)
    assert sent[0]["status"] == 202
    document: dict[str, Any] = json.loads(sent[1]["body"])
    return document


async def test_the_hot_path_renders_the_link_or_no_field_at_all() -> None:
    linked = await _rendered(PurchaseAcceptedOut(event_id="e-1", wallet_url=f"{WALLET}/x"))
    assert linked == {"event_id": "e-1", "wallet_url": f"{WALLET}/x"}
    assert await _rendered(AcceptedOut(event_id="e-1")) == {"event_id": "e-1"}


@pytest.mark.parametrize("linked", [True, False])
async def test_the_documented_route_renders_the_link_or_no_field_at_all(linked: bool) -> None:
    # The route FastAPI documents answers what the hot path does not take (here: a call
    # under a root path), its partner and key as PosCallDep gives them.
    configured = {"receipt_secret": SECRET, "wallet_url": WALLET if linked else None}
    ingest = settings(**configured)
    app = service_app("ingest", **configured)
    groups = DecidingGroups()

    async def pos() -> PosCall:
        call = IdempotentCall(key=None, scope="scope-demo", request_hash="h")
        return PosCall(PARTNER, call, NOW, ingest, None, groups)  # type: ignore[arg-type]

    app.dependency_overrides[pos_call] = pos
    body = purchase().model_dump(mode="json")
    transport = httpx.ASGITransport(app=app, root_path="/r")
    async with httpx.AsyncClient(transport=transport, base_url="http://svc:8080") as client:
        answer = await client.post("/r/v1/purchases", json=body)
    assert answer.status_code == 202, answer.text
    (call,) = groups.decisions.new
    if linked:
        assert answer.json()["event_id"] == call.event.id
        params = link_params(answer.json()["wallet_url"])
        assert verify_receipt_link(SECRET, params, NOW) == ("c-1", "p-1")
    else:
        assert answer.json() == {"event_id": call.event.id}


def test_the_documented_answer_has_the_link_and_a_refunds_has_not() -> None:
    document = service_app("ingest").openapi()
    schemas = document["components"]["schemas"]

    def answer_schema(path: str) -> dict[str, Any]:
        ok = document["paths"][path]["post"]["responses"]["202"]["content"]["application/json"]
        name = ok["schema"]["$ref"].rsplit("/", 1)[-1]
        found: dict[str, Any] = schemas[name]
        return found

    assert "wallet_url" in answer_schema("/v1/purchases")["properties"]
    assert "wallet_url" not in answer_schema("/v1/purchases/{purchase_id}/refunds")["properties"]


def test_a_trailing_slash_of_the_wallet_url_makes_no_double_slash() -> None:
    url = purchases.wallet_link(settings(wallet_url=f"{WALLET}/"), "c-1", "p-1", NOW)
    assert url is not None and url.startswith(f"{WALLET}/wallet/receipt?c=c-1&p=p-1&")


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"receipt_secret": "x" * 31}, "32 bytes"),
        ({"receipt_secret": "é" * 15}, "32 bytes"),  # 30 bytes in UTF-8
        ({"wallet_url": "ftp://wallet"}, "wallet_url"),
        ({"wallet_url": "http://wallet/x?y=1"}, "wallet_url"),
    ],
)
def test_a_short_secret_or_a_malformed_wallet_url_stops_ingest(
    overrides: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ValidationError, match=complaint) as refused:
        settings(**overrides)
    if "receipt_secret" in overrides:
        assert overrides["receipt_secret"] not in str(refused.value)  # never echoed


def test_the_secret_is_kept_as_a_secret() -> None:
    loaded = settings()
    assert isinstance(loaded.receipt_secret, SecretStr)
    assert SECRET not in repr(loaded)
