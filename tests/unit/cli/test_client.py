"""fedelta_client against stand-ins for the services (httpx's MockTransport): signatures
ingest's own verification accepts, an Idempotency-Key on every state-changing call, and
retries only where they are safe and useful, always with the same key and body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from fedelta_client import (
    Accepted,
    InternalClient,
    PosClient,
    Refused,
    RetryPolicy,
    ServiceUrls,
    Unavailable,
    sign,
)
from shared.web import auth
from shared.web.auth import SIGNATURE_HEADER, verify_signature

SECRET = "fs_secret"


class Sleeps:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def pos_client(http: httpx.AsyncClient, sleeps: Sleeps | None = None) -> PosClient:
    return PosClient(
        http,
        ingest_url="http://ingest/",
        partner_key="fk_key",
        partner_secret=SECRET,
        retry=RetryPolicy(attempts=3, backoff_s=0.5, sleep=sleeps or Sleeps()),
    )


def accepted(request: httpx.Request) -> httpx.Response:
    return httpx.Response(202, json={"event_id": f"e-{request.url.path}"})


@pytest.mark.parametrize(
    ("method", "target", "body"),
    [
        ("POST", "/v1/purchases?store=s-1", b"{}"),
        ("PATCH", b"/v1/customers/%63-1?x=%C3%A9", b'{"locale":"it"}'),
        ("DELETE", "/v1/customers/c-1", b""),
    ],
)
def test_the_signature_is_byte_for_byte_the_one_ingest_computes(
    method: str, target: str | bytes, body: bytes
) -> None:
    assert sign(SECRET, 1_700_000_000, method, target, body) == auth.sign(
        SECRET, 1_700_000_000, method, target, body
    )


def test_the_reference_vector_of_security_md() -> None:
    header = sign("secret", 1700000000, "POST", "/v1/purchases?store=s-1", b"{}")
    assert header == (
        "t=1700000000,v1=f0d1ced1b4e4baa3d1c5a6e232a28d806133c7d9fa7577e113709eceee9fb434"
    )


async def test_every_state_changing_call_is_signed_as_ingest_verifies_and_keyed() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return accepted(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        pos = pos_client(http)
        await pos.enrol("c 1", "c1@example.com", consent=True, phone="+358401234567")
        await pos.update_customer("c 1", {"locale": "it"})
        await pos.erase_customer("c 1")
        bought = await pos.purchase("c-1", Decimal("12.50"), "p-1", store_id="s-1")
        await pos.refund("p-1", "2.00", "r-1", datetime(2026, 1, 1, tzinfo=UTC))
    assert [(r.method, r.url.path) for r in seen] == [
        ("POST", "/v1/customers"),
        ("PATCH", "/v1/customers/c 1"),
        ("DELETE", "/v1/customers/c 1"),
        ("POST", "/v1/purchases"),
        ("POST", "/v1/purchases/p-1/refunds"),
    ]
    now = datetime.now(UTC)
    for request in seen:
        assert request.headers["Authorization"] == "Bearer fk_key"
        verify_signature(
            SECRET,
            request.headers[SIGNATURE_HEADER],
            request.method,
            request.url.raw_path,
            request.content,
            now,
        )
    keys = [r.headers["Idempotency-Key"] for r in seen]
    assert all(keys) and len(set(keys)) == len(keys)
    assert bought == Accepted("e-/v1/purchases", keys[3])
    assert json.loads(seen[3].content)["total"] == "12.50"
    assert json.loads(seen[0].content)["consent"] == {"email": True, "sms": False}


async def test_a_lost_answer_and_a_busy_service_are_retried_with_the_same_key_and_body() -> None:
    seen: list[httpx.Request] = []
    answers: Iterator[httpx.Response | httpx.TransportError] = iter(
        [
            httpx.ConnectError("refused"),
            httpx.Response(503, headers={"Retry-After": "1"}, json={"detail": "db away"}),
            httpx.Response(429),
            httpx.Response(202, headers={"Idempotent-Replayed": "true"}, json={"event_id": "e"}),
        ]
    )

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        outcome = next(answers)
        if isinstance(outcome, httpx.TransportError):
            raise outcome
        return outcome

    sleeps = Sleeps()
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        pos = pos_client(http, sleeps)
        pos.retry = RetryPolicy(attempts=4, backoff_s=0.5, sleep=sleeps)
        result = await pos.purchase("c-1", "10.00", "p-1", idempotency_key="k-1")
    assert result == Accepted("e", "k-1", replayed=True)
    assert {r.headers["Idempotency-Key"] for r in seen} == {"k-1"}
    assert len({r.content for r in seen}) == 1
    assert sleeps.seconds == [0.5, 1.0, 2.0]  # backoff, Retry-After, backoff doubled twice


@pytest.mark.parametrize(
    "refusal",
    [
        httpx.Response(422, json={"detail": "currency must be EUR"}),
        httpx.Response(409, json={"detail": "another body under this key"}),
        httpx.Response(401, text="no"),
    ],
)
async def test_a_refusal_is_never_retried(refusal: httpx.Response) -> None:
    calls = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return refusal

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        with pytest.raises(Refused) as raised:
            await pos_client(http).purchase("c-1", "10.00")
    assert calls == 1
    assert raised.value.status_code == refusal.status_code
    detail = refusal.json()["detail"] if refusal.status_code != 401 else None
    assert raised.value.detail == detail
    assert str(raised.value) == (
        f"HTTP {refusal.status_code}: {detail}" if detail else f"HTTP {refusal.status_code}"
    )


async def test_without_a_definite_answer_the_key_is_handed_back() -> None:
    calls = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ReadTimeout("slow")

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        with pytest.raises(Unavailable) as raised:
            await pos_client(http).enrol("c-1", idempotency_key="k-9")
    assert calls == 3
    assert raised.value.idempotency_key == "k-9"


async def test_a_503_without_retry_after_and_a_500_are_not_retried() -> None:
    statuses = iter([503, 500])
    calls = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(next(statuses))

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        pos = pos_client(http)
        for _ in range(2):
            with pytest.raises(Unavailable):
                await pos.purchase("c-1", "10.00")
    assert calls == 2


async def test_the_internal_client_carries_its_token_and_names_a_refusal() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.startswith("/v1/admin/jobs/"):
            return httpx.Response(409, json={"detail": "another instance runs it"})
        return httpx.Response(200, json={"items": [{"partner_id": "demo"}]})

    urls = ServiceUrls("http://ingest", "http://points", "http://tiers", "http://notifications/")
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        admin = InternalClient(http, urls=urls, token="admin")
        assert await admin.partners() == [{"partner_id": "demo"}]
        with pytest.raises(Refused, match="HTTP 409: another instance runs it"):
            await admin.run_job("notifications", "win-back", "2026-01-01T00:00:00Z")
        await admin.balance("c-1")
    assert [str(r.url) for r in seen] == [
        "http://ingest/v1/admin/partners",
        "http://notifications/v1/admin/jobs/win-back?as_of=2026-01-01T00%3A00%3A00Z",
        "http://points/v1/customers/c-1/balance",
    ]
    assert {r.headers["Authorization"] for r in seen} == {"Bearer admin"}
