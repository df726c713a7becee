"""The other services' APIs over HTTP, with the web's console credential at each and the person
acting in `Fedelta-Actor`. One pooled client for the process, owned by the lifespan."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from services.web.ports import Answer, ServiceUnavailable
from services.web.settings import CALLED, WebSettings

ACTOR_HEADER = "Fedelta-Actor"
TIMEOUT = httpx.Timeout(10.0, connect=3.0)


class HttpServices:
    def __init__(self, settings: WebSettings, http: httpx.AsyncClient) -> None:
        self._http = http
        self._urls = {name: settings.url_of(name) for name in CALLED}
        self._auth = {name: f"Bearer {settings.token_of(name)}" for name in CALLED}

    async def get(
        self, service: str, path: str, *, actor: str, params: Mapping[str, str] | None = None
    ) -> Answer:
        return await self._call("GET", service, path, actor=actor, params=params)

    async def send(
        self,
        method: str,
        service: str,
        path: str,
        *,
        actor: str,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Answer:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return await self._call(method, service, path, actor=actor, body=body, headers=headers)

    async def _call(
        self,
        method: str,
        service: str,
        path: str,
        *,
        actor: str,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        sent = {"Authorization": self._auth[service], ACTOR_HEADER: actor, **(headers or {})}
        try:
            response = await self._http.request(
                method,
                f"{self._urls[service]}{path}",
                params=params,
                json=None if body is None else dict(body),
                headers=sent,
                timeout=TIMEOUT,
            )
        except httpx.HTTPError as error:
            raise ServiceUnavailable(service) from error
        if response.status_code >= 500:
            raise ServiceUnavailable(service)
        return Answer(response.status_code, _json(response))


def _json(response: httpx.Response) -> Any:
    """The JSON body; a text body (a service's /metrics) as its text; None for none."""
    if not response.content:
        return None
    if response.headers.get("content-type", "").startswith("text/plain"):
        return response.text
    try:
        return response.json()
    except ValueError:
        return None
