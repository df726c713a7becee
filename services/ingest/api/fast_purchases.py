"""`POST /v1/purchases` for the calls that are in order, without FastAPI's per-request work.

The hot path of a busy POS network. A profile at 64 in flight put FastAPI's routing,
dependency solving, body validation and response rendering at about half of an ingest
worker's time, against a tenth for the use case itself (bench/README.md, "Ingest at
2,000/s"). This route sits first in the app's routes and takes `POST /v1/purchases` as a
plain ASGI call: it reads the body, finds the partner and checks the signature
(`deps.authenticated`), reads the JSON strictly (`loads_strictly`) and validates it with the
same `PurchaseIn` model, takes the Idempotency-Key (`idempotency.call_of`), and hands the
purchase to the same use case (`purchases.report_purchase`, its group commit).

Anything that is not in order — no or a bad API key or signature, JSON that is malformed or
not a valid purchase, a bad Idempotency-Key, another content type, a root path — is not
judged here: the call goes on, with the body already read, to the documented FastAPI route
(`documented`), which answers it exactly as it always did. So every refusal keeps its status,
problem document and order of checks, and the OpenAPI document is that route's. What the use
case answers or raises (a replay, a 409, a rule's 422, the database away) is rendered by the
app's own handlers, as for any route: a raised exception goes up to Starlette's exception
middleware. The metrics and trace label is the documented route's path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.ingest.api.deps import admit, authenticated, request_target
from services.ingest.api.schemas import AcceptedOut, PurchaseIn
from services.ingest.domain.model import Partner
from services.ingest.settings import IngestSettings
from services.ingest.usecases import purchases
from shared.runtime.process import Runtime
from shared.web.auth import SIGNATURE_HEADER
from shared.web.idempotency import HEADER as IDEMPOTENCY_HEADER
from shared.web.idempotency import IdempotentCall, call_of, valid_key
from shared.web.problems import Problem
from shared.web.strict_json import loads_strictly

PATH = "/v1/purchases"
_FALLBACK = "fedelta.ingest.documented_route"  # scope key: this call goes to FastAPI's route
_WANTED = {
    b"authorization": "authorization",
    SIGNATURE_HEADER.lower().encode(): "signature",
    IDEMPOTENCY_HEADER.lower().encode(): "key",
    b"content-type": "content_type",
}
_JSON_TYPES = frozenset({"application/json", "application/json; charset=utf-8"})
_ACCEPTED_HEADERS = [(b"content-type", b"application/json")]


class FastPurchaseRoute(BaseRoute):
    """Matches `POST /v1/purchases` (exactly that path, no root path) ahead of the documented
    route; `router` is the app's router, through which a call not in order goes on."""

    path = PATH
    path_format = PATH

    def __init__(self, router: ASGIApp, documented: BaseRoute) -> None:
        self._router = router
        self._documented = documented

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == PATH
            and not scope.get("root_path")
            and _FALLBACK not in scope
        ):
            return Match.FULL, {"path_params": {}}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self._documented  # the label of the metrics and the trace
        body = await _body(receive)
        app = scope["app"]
        runtime: Runtime = app.state.runtime
        settings: IngestSettings = app.state.settings
        now = runtime.clock.now()
        call = await _in_order(scope, body, app.state, settings, now)
        if call is None:
            scope[_FALLBACK] = True
            await self._router(scope, _replaying(body, receive), send)
            return
        purchase, partner, idempotency = call
        answer = await purchases.report_purchase(
            app.state.purchase_groups, settings, partner, purchase, idempotency, now
        )
        if isinstance(answer, JSONResponse):  # the first answer again (Idempotent-Replayed)
            await answer(scope, receive, send)
            return
        await _send_accepted(answer, send)


async def _in_order(
    scope: Scope, body: bytes, state: Any, settings: IngestSettings, now: datetime
) -> tuple[PurchaseIn, Partner, IdempotentCall] | None:
    """(the purchase, its partner, its key) when the call is in order; None otherwise, for the
    documented route to answer."""
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        field = _WANTED.get(name)
        if field is not None and field not in headers:  # the first one, as Starlette reads
            headers[field] = value.decode("latin-1")
    key = headers.get("key")
    if headers.get("content_type", "").lower() not in _JSON_TYPES or not valid_key(key):
        return None
    try:
        partner = await authenticated(
            state.partners,
            now,
            settings,
            headers.get("authorization"),
            headers.get("signature"),
            "POST",
            request_target(scope),
            body,
        )
        purchase = PurchaseIn.model_validate(loads_strictly(body))
        admit(state.rate_limits, partner, now)  # a call in order counts once, here
    except (Problem, ValueError, ValidationError):  # the documented route says which, and how
        return None
    authorization = headers.get("authorization", "")
    return purchase, partner, call_of(key, authorization, "POST", PATH, body)


async def _body(receive: Receive) -> bytes:
    """The whole body (as `Request.body`; BodyLimit's receive refuses one over the limit)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


def _replaying(body: bytes, receive: Receive) -> Receive:
    """The body once more, then the client's own messages (a disconnect)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _send_accepted(answer: AcceptedOut, send: Send) -> None:
    """202 with the answer, as the documented route renders its `AcceptedOut`."""
    content = answer.__pydantic_serializer__.to_json(answer)
    headers = [(b"content-length", str(len(content)).encode()), *_ACCEPTED_HEADERS]
    await send({"type": "http.response.start", "status": 202, "headers": headers})
    await send({"type": "http.response.body", "body": content})
