"""The request histogram is fed by plain ASGI middleware, with the labels it always had."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from shared.observability.metrics import HTTP_REQUEST_SECONDS as REQUEST_SECONDS
from shared.web.http import RequestTimer


def observed(method: str, route: str, status: str) -> float:
    for metric in REQUEST_SECONDS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count") and sample.labels == {
                "method": method,
                "route": route,
                "status": status,
            }:
                return float(sample.value)
    return 0.0


async def test_each_answer_is_counted_by_method_route_template_and_status() -> None:
    app = FastAPI()

    @app.get("/v1/things/{thing_id}", status_code=202)
    async def thing(thing_id: str) -> dict[str, str]:
        return {"thing_id": thing_id}

    app.add_middleware(RequestTimer)
    before = observed("GET", "/v1/things/{thing_id}", "202")
    unmatched_before = observed("GET", "unmatched", "404")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        assert (await client.get("/v1/things/a")).status_code == 202
        assert (await client.get("/v1/things/b")).status_code == 202
        assert (await client.get("/nowhere")).status_code == 404

    assert observed("GET", "/v1/things/{thing_id}", "202") == before + 2
    assert observed("GET", "unmatched", "404") == unmatched_before + 1
