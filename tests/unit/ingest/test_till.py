"""The till calls (product §7): what ingest makes of points' answers (domain/till.py), the use
cases with a fake points gateway (usecases/till.py), the bounds of their bodies, and the HTTP
gateway's mapping of headers and failures (against httpx's mock transport)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.ingest.adapters.points_gateway import HttpPointsGateway
from services.ingest.api.schemas import (
    CouponCode,
    CouponRedeemIn,
    PurchaseIn,
    TillHoldIn,
    TillRedemptionIn,
)
from services.ingest.domain.model import Partner, request_hash
from services.ingest.domain.till import (
    MAX_ANSWER_BYTES,
    PointsAnswer,
    TillFailure,
    outcome_unknown,
    relayed,
)
from services.ingest.domain.till_replays import signature_of
from services.ingest.ports import PointsOutcomeUnknown, PointsUnreachable, TillCall
from services.ingest.settings import IngestSettings
from services.ingest.usecases import till
from services.ingest.usecases.purchases import purchase_fingerprint
from shared.bounds import MAX_POINTS
from tests.support.fakes.ingest import FakePointsGateway, json_answer
from tests.support.fakes.till_signatures import FakeTillSignatures
from tests.support.stack import sha256_hex

PARTNER = Partner(
    partner_id="bar-1",
    name="Bar",
    api_key_hash="h",
    signing_secret="s",
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
)
SETTINGS = IngestSettings(
    database_url="postgresql+asyncpg://u:p@localhost/db",
    kafka_bootstrap_servers="localhost:9092",
    admin_token_sha256=sha256_hex("admin-token-0123456789"),
    points_token="till-token-0123456789",
    points_retry_after_seconds=2,
)
PROBLEM = "application/problem+json"


def problem(status: int, slug: str) -> PointsAnswer:
    document = {"type": f"urn:fedelta:problem:{slug}", "title": "t", "status": status}
    return json_answer(status, document, content_type=PROBLEM)


# --- domain: what is relayed, what is replaced --------------------------------------------


class TestRelayed:
    def test_an_answer_is_passed_on_with_its_status_body_and_headers(self) -> None:
        answer = json_answer(201, {"redemption_id": "r-1"}, retry_after="3", replayed="true")
        passed = relayed(answer, retry_after=1)
        assert passed.status == 201
        assert passed.media_type == "application/json"
        assert passed.body == answer.body
        assert passed.headers == {"Retry-After": "3", "Idempotent-Replayed": "true"}

    @pytest.mark.parametrize(
        ("status", "slug"),
        [
            (404, "unknown-coupon"),
            (409, "coupon-used"),
            (410, "coupon-expired"),
            (403, "another-partners-reward"),
            (422, "insufficient-points"),
            (400, "invalid-idempotency-key"),
        ],
    )
    def test_a_refusal_of_points_is_passed_on_as_it_is(self, status: int, slug: str) -> None:
        answer = problem(status, slug)
        passed = relayed(answer, retry_after=1)
        assert (passed.status, passed.media_type, passed.body) == (status, PROBLEM, answer.body)

    @pytest.mark.parametrize("slug", ["unauthorized", "forbidden"])
    def test_a_refusal_of_ingests_own_token_is_a_502_not_the_tills_fault(self, slug: str) -> None:
        with pytest.raises(TillFailure) as refused:
            relayed(problem(401 if slug == "unauthorized" else 403, slug), retry_after=1)
        assert (refused.value.status, refused.value.slug) == (502, "points-misconfigured")

    def test_points_away_is_a_503_with_its_own_retry_after(self) -> None:
        with pytest.raises(TillFailure) as failed:
            relayed(_with_retry(7), retry_after=1)
        assert (failed.value.status, failed.value.slug) == (503, "points-unavailable")
        assert failed.value.headers == {"Retry-After": "7"}

    @pytest.mark.parametrize("status", [500, 502, 504])
    def test_a_failure_of_points_is_a_502_that_says_retry_with_the_same_key(
        self, status: int
    ) -> None:
        with pytest.raises(TillFailure) as failed:
            relayed(problem(status, "internal"), retry_after=2)
        assert (failed.value.status, failed.value.slug) == (502, "points-failed")
        assert "same Idempotency-Key" in failed.value.detail
        assert failed.value.extra == {"points_status": status}
        assert failed.value.headers == {"Retry-After": "2"}

    @pytest.mark.parametrize(
        ("content_type", "body"),
        [
            ("text/html", b"<html>bad gateway</html>"),
            ("application/json", b"<html>"),
            ("application/json", b"\xff\xfe"),
            ("", b"{}"),
            ("application/json", b" " * (MAX_ANSWER_BYTES + 1)),
        ],
    )
    def test_an_answer_that_is_not_json_is_a_502(self, content_type: str, body: bytes) -> None:
        with pytest.raises(TillFailure) as failed:
            relayed(PointsAnswer(200, content_type, body), retry_after=1)
        assert (failed.value.status, failed.value.slug) == (502, "points-bad-answer")

    def test_json_with_a_charset_is_json(self) -> None:
        answer = PointsAnswer(200, "application/json; charset=utf-8", b'{"available": 5}')
        assert relayed(answer, retry_after=1).media_type == "application/json"

    @given(
        status=st.integers(min_value=100, max_value=599),
        content_type=st.sampled_from(["application/json", PROBLEM, "text/plain", ""]),
        body=st.one_of(st.binary(max_size=64), st.just(b'{"type": "urn:x:forbidden"}')),
    )
    def test_whatever_points_answers_the_till_never_gets_a_5xx_other_than_502_or_503(
        self, status: int, content_type: str, body: bytes
    ) -> None:
        try:
            passed = relayed(PointsAnswer(status, content_type, body), retry_after=1)
        except TillFailure as failure:
            assert failure.status in (502, 503)
            assert failure.slug.startswith("points-")
        else:
            assert passed.status < 500
            assert passed.media_type in ("application/json", PROBLEM)
            json.loads(passed.body)

    def test_no_answer_to_a_read_is_simply_unavailable(self) -> None:
        assert outcome_unknown(False, 1).slug == "points-unavailable"
        assert outcome_unknown(True, 1).slug == "points-outcome-unknown"
        assert outcome_unknown(True, 4).headers == {"Retry-After": "4"}


def _with_retry(seconds: int) -> PointsAnswer:
    answer = problem(503, "database-unavailable")
    return PointsAnswer(answer.status, answer.content_type, answer.body, retry_after=str(seconds))


# --- the use cases with a fake gateway -----------------------------------------------------


def signed() -> dict[str, Any]:
    """What a redemption or a hold takes besides its call: a memory of signed calls and a
    signature never seen before (tests/unit/ingest/test_till_replays.py tests the guard)."""
    return {
        "signatures": FakeTillSignatures(),
        "signature": signature_of(uuid.uuid4().bytes, 1_800_000_000),
    }


class TestUseCases:
    async def test_a_balance_is_asked_for_the_partner_without_a_store_or_key(self) -> None:
        points = FakePointsGateway(json_answer(200, {"available": 120}))
        answer = await till.balance(points, SETTINGS, PARTNER, "c-1")
        assert (answer.status, json.loads(answer.body)) == (200, {"available": 120})
        assert points.calls == [TillCall("GET", "/v1/customers/c-1/balance", "bar-1")]

    async def test_the_members_rewards(self) -> None:
        points = FakePointsGateway(json_answer(200, {"items": []}))
        await till.customer_rewards(points, SETTINGS, PARTNER, "c-1")
        assert points.calls == [TillCall("GET", "/v1/customers/c-1/rewards", "bar-1")]

    async def test_a_free_form_redemption_goes_with_the_store_as_a_header_and_the_key(
        self,
    ) -> None:
        points = FakePointsGateway(json_answer(201, {"redemption_id": "r-1"}))
        body = TillRedemptionIn(points=50, reward="coffee", store_id="s-9")
        answer = await till.redeem(points, SETTINGS, PARTNER, "c-1", body, "key-1", **signed())
        assert answer.status == 201
        assert points.calls == [
            TillCall(
                "POST",
                "/v1/customers/c-1/redemptions",
                "bar-1",
                store_id="s-9",
                idempotency_key="key-1",
                body={"points": 50, "reward": "coffee"},
            )
        ]

    async def test_a_reward_redemption_sends_only_the_reward(self) -> None:
        points = FakePointsGateway(json_answer(201, {"redemption_id": "r-1"}))
        body = TillRedemptionIn(reward_id="rw-1")
        await till.redeem(points, SETTINGS, PARTNER, "c-1", body, "key-1", **signed())
        assert points.calls[0].body == {"reward_id": "rw-1"}
        assert points.calls[0].store_id is None

    async def test_a_hold(self) -> None:
        points = FakePointsGateway(json_answer(201, {"hold_id": "h-1"}))
        body = TillHoldIn(points=10, reward="cake", store_id="s-1")
        await till.place_hold(points, SETTINGS, PARTNER, "c-1", body, "key-2", **signed())
        (call,) = points.calls
        assert (call.method, call.path, call.store_id, call.idempotency_key) == (
            "POST",
            "/v1/customers/c-1/holds",
            "s-1",
            "key-2",
        )
        assert call.body == {"points": 10, "reward": "cake"}

    @pytest.mark.parametrize("action", ["capture", "void"])
    async def test_settling_a_hold_needs_no_key(self, action: str) -> None:
        points = FakePointsGateway(json_answer(200, {"status": action}))
        await till.settle_hold(points, SETTINGS, PARTNER, "h-1", action, None)
        assert points.calls == [TillCall("POST", f"/v1/holds/h-1/{action}", "bar-1")]

    async def test_a_coupon_is_redeemed_with_the_store_in_its_body_and_as_a_header(self) -> None:
        points = FakePointsGateway(problem(409, "coupon-used"))
        use = CouponRedeemIn(store_id="s-2", purchase_id="p-7")
        answer = await till.redeem_coupon(points, SETTINGS, PARTNER, "K7QM-4XPD", use, None)
        assert (answer.status, answer.media_type) == (409, PROBLEM)
        assert points.calls == [
            TillCall(
                "POST",
                "/v1/coupons/K7QM-4XPD/redeem",
                "bar-1",
                store_id="s-2",
                body={"store_id": "s-2", "purchase_id": "p-7"},
            )
        ]

    async def test_spending_or_reserving_without_a_key_is_a_428_and_calls_nobody(self) -> None:
        points = FakePointsGateway()
        with pytest.raises(TillFailure) as refused:
            await till.redeem(
                points, SETTINGS, PARTNER, "c-1", TillRedemptionIn(reward_id="rw"), None, **signed()
            )
        assert (refused.value.status, refused.value.slug) == (428, "idempotency-key-required")
        with pytest.raises(TillFailure):
            await till.place_hold(
                points, SETTINGS, PARTNER, "c-1", TillHoldIn(points=1, reward="x"), None, **signed()
            )
        assert points.calls == []

    async def test_without_a_till_token_every_call_is_a_503_that_says_so(self) -> None:
        with pytest.raises(TillFailure) as failed:
            await till.balance(None, SETTINGS, PARTNER, "c-1")
        assert (failed.value.status, failed.value.slug) == (503, "till-not-configured")

    async def test_points_unreachable_is_a_503_with_retry_after(self) -> None:
        points = FakePointsGateway(failure=PointsUnreachable("ConnectError"))
        with pytest.raises(TillFailure) as failed:
            await till.place_hold(
                points, SETTINGS, PARTNER, "c-1", TillHoldIn(points=1, reward="x"), "k", **signed()
            )
        assert (failed.value.status, failed.value.slug) == (503, "points-unavailable")
        assert failed.value.headers == {"Retry-After": "2"}

    async def test_no_answer_to_a_redemption_says_retry_with_the_same_key(self) -> None:
        points = FakePointsGateway(failure=PointsOutcomeUnknown("ReadTimeout"))
        with pytest.raises(TillFailure) as failed:
            await till.redeem(
                points,
                SETTINGS,
                PARTNER,
                "c-1",
                TillRedemptionIn(points=5, reward="x"),
                "k",
                **signed(),
            )
        assert (failed.value.status, failed.value.slug) == (503, "points-outcome-unknown")

    async def test_a_failure_is_logged_by_kind_and_partner_never_by_path(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        points = FakePointsGateway(failure=PointsOutcomeUnknown("ReadTimeout"))
        with pytest.raises(TillFailure):
            await till.redeem_coupon(
                points, SETTINGS, PARTNER, "SECRET-CODE-1", CouponRedeemIn(), None
            )
        assert "ReadTimeout" in caplog.text and "bar-1" in caplog.text
        assert "SECRET-CODE-1" not in caplog.text


# --- the bodies' bounds --------------------------------------------------------------------


class TestBodies:
    @pytest.mark.parametrize(
        "body",
        [
            {"points": 5, "reward": "coffee"},
            {"reward_id": "rw-1"},
            {"reward_id": "rw-1", "store_id": "s-1"},
            {"points": MAX_POINTS, "reward": "x", "reward_id": None},
        ],
    )
    def test_a_redemption_is_free_form_or_a_reward(self, body: dict[str, object]) -> None:
        TillRedemptionIn.model_validate_json(json.dumps(body))

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"points": 5},
            {"reward": "coffee"},
            {"points": 5, "reward": "coffee", "reward_id": "rw-1"},
            {"points": "5", "reward": "coffee"},
            {"points": 5.0, "reward": "coffee"},
            {"points": True, "reward": "coffee"},
            {"points": 0, "reward": "coffee"},
            {"points": MAX_POINTS + 1, "reward": "coffee"},
            {"points": 5, "reward": "a\nb"},
            {"points": 5, "reward": "x" * 129},
            {"reward_id": "rw 1"},
            {"reward_id": "rw-1", "partner_id": "other"},
            {"reward_id": "rw-1", "store_id": "s/1"},
        ],
    )
    def test_anything_else_is_refused(self, body: dict[str, object]) -> None:
        with pytest.raises(ValidationError):
            TillRedemptionIn.model_validate_json(json.dumps(body))

    def test_a_hold_takes_points_reward_and_a_store(self) -> None:
        hold = TillHoldIn.model_validate_json('{"points": 3, "reward": "tea", "store_id": "s"}')
        assert hold.for_points() == {"points": 3, "reward": "tea"}
        with pytest.raises(ValidationError):
            TillHoldIn.model_validate_json('{"reward_id": "rw-1"}')

    def test_a_coupons_use_names_a_store_and_a_purchase_or_nothing(self) -> None:
        assert CouponRedeemIn.model_validate_json("{}").for_points() == {}
        with pytest.raises(ValidationError):
            CouponRedeemIn.model_validate_json('{"code": "x"}')

    @given(st.text(max_size=80))
    def test_a_coupon_code_is_letters_digits_dashes_and_underscores_4_to_64(
        self, text: str
    ) -> None:
        from pydantic import TypeAdapter

        adapter = TypeAdapter(CouponCode)
        allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
        valid = 4 <= len(text) <= 64 and set(text) <= allowed and text[0] not in "-_"
        try:
            adapter.validate_python(text)
        except ValidationError:
            assert not valid
        else:
            assert valid

    def test_a_purchase_names_its_redemption_with_a_bounded_id(self) -> None:
        body = {
            "purchase_id": "p-1",
            "customer_id": "c-1",
            "occurred_at": "2026-11-22T10:15:00Z",
            "currency": "EUR",
            "total": "49.99",
        }
        assert PurchaseIn.model_validate(body).redemption_id is None
        assert PurchaseIn.model_validate({**body, "redemption_id": "r-1"}).redemption_id == "r-1"
        with pytest.raises(ValidationError):
            PurchaseIn.model_validate({**body, "redemption_id": "r 1"})
        with pytest.raises(ValidationError):
            PurchaseIn.model_validate({**body, "redemption_id": "r" * 65})

    def test_a_purchase_without_a_redemption_keeps_the_fingerprint_it_had_before(self) -> None:
        body = {
            "purchase_id": "p-1",
            "customer_id": "c-1",
            "occurred_at": "2026-11-22T10:15:00Z",
            "currency": "EUR",
            "total": "49.99",
        }
        before = {**body, "store_id": None, "items": None, "occurred_at": "2026-11-22T10:15:00Z"}
        plain = PurchaseIn.model_validate(body)
        assert purchase_fingerprint(plain) == request_hash(before)
        paid = PurchaseIn.model_validate({**body, "redemption_id": "r-1"})
        assert purchase_fingerprint(paid) != purchase_fingerprint(plain)


# --- the HTTP gateway, against httpx's mock transport --------------------------------------


def gateway(handler: httpx.MockTransport) -> HttpPointsGateway:
    return HttpPointsGateway(
        "http://points.internal:8081/", "till-token-0123456789", transport=handler
    )


class TestHttpGateway:
    async def test_a_call_carries_the_till_token_partner_store_key_and_body(self) -> None:
        seen: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(
                201,
                json={"hold_id": "h-1"},
                headers={"Retry-After": "1", "Idempotent-Replayed": "true"},
            )

        points = gateway(httpx.MockTransport(answer))
        call = TillCall(
            "POST",
            "/v1/customers/c-1/holds",
            "bar-1",
            store_id="s-1",
            idempotency_key="k-1",
            body={"points": 3, "reward": "tea"},
        )
        got = await points.call(call)
        await points.aclose()
        (request,) = seen
        assert str(request.url) == "http://points.internal:8081/v1/customers/c-1/holds"
        assert request.headers["authorization"] == "Bearer till-token-0123456789"
        assert request.headers["fedelta-partner-id"] == "bar-1"
        assert request.headers["fedelta-store-id"] == "s-1"
        assert request.headers["idempotency-key"] == "k-1"
        assert json.loads(request.content) == {"points": 3, "reward": "tea"}
        assert (got.status, json.loads(got.body)) == (201, {"hold_id": "h-1"})
        assert (got.retry_after, got.replayed) == ("1", "true")

    async def test_a_read_sends_no_body_store_or_key(self) -> None:
        seen: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, json={})

        points = gateway(httpx.MockTransport(answer))
        await points.call(TillCall("GET", "/v1/customers/c-1/balance", "bar-1"))
        (request,) = seen
        assert request.content == b""
        assert "fedelta-store-id" not in request.headers
        assert "idempotency-key" not in request.headers

    @pytest.mark.parametrize(
        ("error", "raised"),
        [
            (httpx.ConnectError("refused"), PointsUnreachable),
            (httpx.ConnectTimeout("slow"), PointsUnreachable),
            (httpx.PoolTimeout("busy"), PointsUnreachable),
            (httpx.ReadTimeout("hung"), PointsOutcomeUnknown),
            (httpx.RemoteProtocolError("dropped"), PointsOutcomeUnknown),
            (httpx.ReadError("reset"), PointsOutcomeUnknown),
            (httpx.WriteTimeout("stuck"), PointsOutcomeUnknown),
        ],
    )
    async def test_a_failure_is_told_by_whether_anything_was_sent(
        self, error: Exception, raised: type[Exception]
    ) -> None:
        def fail(request: httpx.Request) -> httpx.Response:
            raise error

        with pytest.raises(raised) as failed:
            await gateway(httpx.MockTransport(fail)).call(TillCall("GET", "/v1/x", "p"))
        assert str(failed.value) == type(error).__name__

    async def test_a_huge_answer_is_read_only_past_the_bound(self) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, content=b"[" + b"1," * MAX_ANSWER_BYTES + b"1]")

        got = await gateway(httpx.MockTransport(answer)).call(TillCall("GET", "/v1/x", "p"))
        assert len(got.body) == MAX_ANSWER_BYTES + 1

    def test_its_repr_never_shows_the_token(self) -> None:
        assert "till-token" not in repr(gateway(httpx.MockTransport(lambda r: httpx.Response(200))))


class TestSettings:
    def test_the_points_url_must_be_http(self) -> None:
        base = SETTINGS.model_dump()
        base["admin_token_sha256"] = sha256_hex("admin-token-0123456789")
        for url in ("ftp://points", "points:8081", "http://", "http://a b", "http://p/?x=1"):
            with pytest.raises(ValidationError):
                IngestSettings(**{**base, "points_url": url, "points_token": None})

    def test_a_till_token_is_long_enough(self) -> None:
        base = SETTINGS.model_dump()
        base["admin_token_sha256"] = sha256_hex("admin-token-0123456789")
        with pytest.raises(ValidationError):
            IngestSettings(**{**base, "points_token": "short"})
