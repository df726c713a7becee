"""Reading a coupon's code from points (adapters/coupons.py) against a stand-in server: the
route and the token, 200 a coupon, 404 unknown, anything else (5xx, a timeout, no answer, a
refused token, an answer that is no coupon) points away, and never the code in an error."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from services.notifications.adapters.coupons import HttpCouponReader
from services.notifications.domain.coupons import CouponUnavailable, UnknownCoupon

CODE = "FDL7K2QM9XWA3HTR"
EXPIRES = datetime(2027, 1, 31, 12, 0, tzinfo=UTC)


def answer(**changes: object) -> dict[str, object]:
    return {
        "coupon_id": "cp:1",
        "customer_id": "c1",
        "reward_id": "rw-1",
        "reward": "Mug",
        "code": CODE,
        "status": "issued",
        "expires_at": "2027-01-31T13:00:00+01:00",
        "points": 500,
        **changes,
    }


def reader(handler: httpx.MockTransport) -> HttpCouponReader:
    return HttpCouponReader(
        base_url="http://points.internal:8081/", token="read-token", transport=handler
    )


async def test_a_coupon_is_read_by_its_id_with_points_read_token() -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=answer())

    coupon = await reader(httpx.MockTransport(handle)).coupon("cp:1")

    (request,) = seen
    assert request.method == "GET"
    assert str(request.url) == "http://points.internal:8081/v1/coupons/cp%3A1"
    assert request.headers["Authorization"] == "Bearer read-token"
    assert (coupon.coupon_id, coupon.customer_id, coupon.code, coupon.status) == (
        "cp:1",
        "c1",
        CODE,
        "issued",
    )
    assert coupon.expires_at == EXPIRES and coupon.expires_at.tzinfo is UTC
    assert CODE not in repr(coupon)


async def test_a_404_is_an_unknown_coupon_which_no_retry_changes() -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(404, json={"title": "Not found"}))
    with pytest.raises(UnknownCoupon) as caught:
        await reader(transport).coupon("cp-1")
    assert caught.value.permanent
    assert caught.value.reason == "unknown coupon (points answered 404)"


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429, 401, 403])
async def test_any_other_status_is_points_away(status: int) -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(status, json=answer()))
    with pytest.raises(CouponUnavailable) as caught:
        await reader(transport).coupon("cp-1")
    assert not caught.value.permanent
    assert caught.value.reason == f"points unavailable (HTTP {status})"


@pytest.mark.parametrize(
    "error", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.PoolTimeout("full")]
)
async def test_no_answer_in_time_is_points_away_by_its_class(error: httpx.HTTPError) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(CouponUnavailable) as caught:
        await reader(httpx.MockTransport(handle)).coupon("cp-1")
    assert caught.value.reason == f"points unavailable ({type(error).__name__})"


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(answer(code="")),
        json.dumps(answer(code=f"{CODE} with spaces")),
        json.dumps(answer(code=CODE + "\n")),
        json.dumps(answer(code=CODE * 10)),
        json.dumps(answer(expires_at="2027-01-31T12:00:00")),  # no offset
        json.dumps({k: v for k, v in answer().items() if k != "code"}),
        json.dumps(answer()).replace("}", ""),
        "<html>",
    ],
)
async def test_an_answer_that_is_no_usable_coupon_is_points_away_without_quoting_it(
    body: str,
) -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(200, text=body))
    with pytest.raises(CouponUnavailable) as caught:
        await reader(transport).coupon("cp-1")
    assert caught.value.reason == "points answered with no usable coupon"
    assert CODE not in str(caught.value) and caught.value.__cause__ is None


async def test_the_client_is_kept_between_calls_and_closed() -> None:
    calls = 0

    def handle(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(200, json=answer())

    points = reader(httpx.MockTransport(handle))
    await points.coupon("cp:1")
    await points.coupon("cp:1")
    await points.aclose()
    assert calls == 2
