"""A larger body limit for one route (a member import's 500 rows), every other route keeping
the service's `max_body_bytes`: the shared BodyLimit middleware, one instance per limit,
chosen by the request's path."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.web.body_limit import BodyLimit


class BodyLimitByPath:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, larger: Mapping[str, int]) -> None:
        self.default = BodyLimit(app, max_body_bytes=max_body_bytes)
        self.by_path = {
            path: BodyLimit(app, max_body_bytes=limit) for path, limit in larger.items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limited = self.by_path.get(scope.get("path", ""), self.default)
        await limited(scope, receive, send)


def raise_body_limit(app: FastAPI, larger: Mapping[str, int]) -> None:
    """Replaces the app's BodyLimit (create_service_app's) by one that allows `larger` bodies
    on those paths; before the app serves its first request."""
    replaced = 0
    for index, middleware in enumerate(app.user_middleware):
        factory: object = middleware.cls
        if factory is BodyLimit:
            limit = middleware.kwargs["max_body_bytes"]
            assert isinstance(limit, int)
            app.user_middleware[index] = Middleware(
                BodyLimitByPath, max_body_bytes=limit, larger=larger
            )
            replaced += 1
    assert replaced == 1, "create_service_app installs one BodyLimit"
