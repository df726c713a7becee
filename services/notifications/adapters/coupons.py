"""A coupon's code, read from points over internal HTTP when its message is sent.

`GET {points_url}/v1/coupons/{coupon_id}` with points' read token: 200 the coupon with its
code, 404 unknown. Failures are told by their kind only (an HTTP status, an exception
class), never by the answer's text, which holds the code."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC
from typing import Protocol
from urllib.parse import quote

import httpx
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from services.notifications.adapters.http_channels import ClientPool
from services.notifications.domain.coupons import (
    MAX_CODE_LENGTH,
    Coupon,
    CouponUnavailable,
    UnknownCoupon,
)


class CouponReader(Protocol):
    async def coupon(self, coupon_id: str) -> Coupon:
        """The coupon with its code. Raises UnknownCoupon when points does not know it, and
        CouponUnavailable when points could not be asked or did not answer with a coupon."""
        ...


class _CouponAnswer(BaseModel):
    """What notifications reads of points' answer (the rest is ignored): a code it can put
    in a message as is, printable ASCII without spaces."""

    model_config = ConfigDict(extra="ignore")

    coupon_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    code: str = Field(min_length=1, max_length=MAX_CODE_LENGTH, pattern=r"^[!-~]+$")
    status: str
    expires_at: AwareDatetime


@dataclass(frozen=True)
class HttpCouponReader:
    """Reads coupons from points with its read token, over a client kept between batches
    (at most `connections` calls at once), each call bounded by `timeout_seconds`."""

    base_url: str
    token: str = field(repr=False)
    timeout_seconds: float = 5.0
    transport: httpx.AsyncBaseTransport | None = None  # a stand-in server in unit tests
    connections: int = 8
    _pool: ClientPool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_pool", ClientPool(self.connections, self.timeout_seconds, self.transport)
        )

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def coupon(self, coupon_id: str) -> Coupon:
        url = f"{self.base_url.rstrip('/')}/v1/coupons/{quote(coupon_id, safe='')}"
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        try:
            response = await self._pool.client().get(url, headers=headers)
        except httpx.HTTPError as error:
            raise CouponUnavailable(f"points unavailable ({type(error).__name__})") from None
        if response.status_code == 404:
            raise UnknownCoupon("unknown coupon (points answered 404)")
        if response.status_code != 200:
            # 5xx, 408, 429, and a token points refuses (401/403): an operator's or points'
            # matter, which the message waits out.
            raise CouponUnavailable(f"points unavailable (HTTP {response.status_code})")
        try:
            answer = _CouponAnswer.model_validate_json(response.content)
        except ValidationError:
            # The error's text may quote the code: only its kind is kept.
            raise CouponUnavailable("points answered with no usable coupon") from None
        return Coupon(
            coupon_id=answer.coupon_id,
            customer_id=answer.customer_id,
            code=answer.code,
            status=answer.status,
            expires_at=answer.expires_at.astimezone(UTC),
        )
