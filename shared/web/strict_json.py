"""JSON bodies read strictly: a duplicate key, NaN or Infinity is refused, not resolved.

`json.loads` keeps the last of two equal keys and reads NaN; a signed body whose meaning
depends on which duplicate a reader keeps is ambiguous, so it is refused with a 422. Numbers
with a fraction are read as exact Decimals, never as binary floats, so the bounds see what
was sent ("1E+2" stays an exponent). A router opts in with `route_class=StrictJsonRoute`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException


class _Refused(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Refused(f"the key {key!r} appears more than once in one object")
            seen.add(key)
    return document


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def loads_strictly(body: bytes | str) -> Any:
    """The document in `body`; raises ValueError for what plain `json.loads` would let by."""
    try:
        return json.loads(
            body,
            object_pairs_hook=_unique_keys,
            parse_float=Decimal,
            parse_constant=_no_constant,
        )
    except _Refused:
        raise
    except ValueError as error:  # JSONDecodeError, and bytes that are not UTF-8
        raise _Refused(f"the body is not valid JSON ({type(error).__name__})") from None


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = loads_strictly(await self.body())
            except _Refused as refusal:
                # An HTTPException is the one error FastAPI lets through as it is while
                # reading a body; the problem handlers turn it into problem+json.
                raise HTTPException(422, detail=f"body: {refusal}") from None
        return self._json


class StrictJsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_strictly(request: Request) -> Response:
            return await handle(StrictJsonRequest(request.scope, request.receive))

        return handle_strictly
