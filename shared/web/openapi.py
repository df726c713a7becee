"""Every service's OpenAPI document, completed for generated clients and fuzzers.

FastAPI documents what the route signatures say; this adds what they cannot: how a call is
authenticated (bearer service tokens; for partner calls the API key and the signature), the
problem+json errors every operation can answer with, and text/plain for the metrics.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from shared.web.auth import SIGNATURE_HEADER
from shared.web.problems import PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `type` names the kind of problem.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "examples": ["urn:fedelta:problem:invalid-request"]},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "For 422: where the request is invalid (never the value sent).",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}

SECURITY_SCHEMES: dict[str, Any] = {
    "serviceToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A service token: the read token for reads, the admin token for all.",
    },
    "partnerApiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "The partner's API key.",
    },
    "partnerSignature": {
        "type": "apiKey",
        "in": "header",
        "name": SIGNATURE_HEADER,
        "description": (
            "t=<unix seconds>,v1=<hex HMAC-SHA256 with the partner's signing secret of "
            "'<t>.<METHOD>.<path?query>.<raw body>'>"
        ),
    },
}

DESCRIPTIONS = {
    400: "The body could not be read",
    401: "Missing or unknown credentials, or a missing, stale or wrong signature",
    403: "The credentials do not allow this call",
    404: "Not found",
    409: "Conflicts with an earlier call (an id or idempotency key reused with another body)",
    410: "Gone: it existed and can no longer be used",
    413: "The request body is larger than the limit",
    422: "Invalid request, or refused by the program's rules",
    428: "An Idempotency-Key is required for this call, so that a retry is safe",
    502: "A service this call depends on failed or answered nonsense; retry later",
    503: "The database cannot be reached right now; retry (retries are safe)",
}
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
_CHANGING = {"post", "put", "patch", "delete"}
_CREDENTIAL_HEADERS = {"authorization", SIGNATURE_HEADER.lower()}
_PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def install_openapi(app: FastAPI) -> None:
    """Serve the completed document at /openapi.json."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = completed(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def completed(document: dict[str, Any]) -> dict[str, Any]:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    components["securitySchemes"] = SECURITY_SCHEMES
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in _METHODS:
                _complete_operation(path, method, operation)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document


def _complete_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    parameters: list[dict[str, Any]] = operation.get("parameters", [])
    headers = {p["name"].lower() for p in parameters if p.get("in") == "header"}
    # Credentials are described by the security schemes, not as parameters, so that a client
    # generator asks for them once and a fuzzer does not invent them.
    kept = [
        p
        for p in parameters
        if not (p.get("in") == "header" and p["name"].lower() in _CREDENTIAL_HEADERS)
    ]
    if kept:
        operation["parameters"] = kept
    else:
        operation.pop("parameters", None)
    if SIGNATURE_HEADER.lower() in headers:
        operation["security"] = [{"partnerApiKey": [], "partnerSignature": []}]
    elif "authorization" in headers:
        operation["security"] = [{"serviceToken": []}]
    secured = "security" in operation
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if path == "/metrics":
        responses["200"]["content"] = {"text/plain": {"schema": {"type": "string"}}}
    statuses = {413}  # the body limit stands before every route
    if secured:
        statuses |= {401, 403, 503}
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    if kept or "requestBody" in operation:
        statuses.add(422)
    if "requestBody" in operation:
        statuses.add(400)
    if method in _CHANGING and secured:
        statuses.add(409)
    if path == "/readyz":
        statuses.add(503)
    for status in sorted(statuses | {int(s) for s in responses if s.isdigit() and s >= "400"}):
        answer = responses.setdefault(str(status), {"description": DESCRIPTIONS[status]})
        answer["content"] = _PROBLEM_CONTENT
