"""The API docs (Swagger UI) at /docs, served with their assets by the service itself.

FastAPI's own /docs loads Swagger UI from a CDN and starts it with an inline script; this page
loads the pinned copy in shared/web/docs_assets (its README says which, and why not a
package) and starts it with a script file of its own, under a Content-Security-Policy that
allows scripts, styles and fetches from the service only. /redoc is off.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from shared.web.problems import Problem

ASSETS_DIR = Path(__file__).with_name("docs_assets")
PAGE_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
# The files the page loads, with their types (never guessed from the system's tables).
ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "init.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

docs_router = APIRouter(include_in_schema=False)


@docs_router.get(PAGE_PATH)
async def docs_page(request: Request) -> HTMLResponse:
    return HTMLResponse(
        page(request.app.title, request.app.openapi_url or "/openapi.json"),
        headers={"Content-Security-Policy": DOCS_CSP},
    )


@docs_router.get(ASSETS_PATH + "/{name}")
async def docs_asset(name: str) -> FileResponse:
    media_type = ASSET_TYPES.get(name)
    if media_type is None:
        raise Problem(404, "Not found", "Not Found", slug="not-found")
    # Revalidated (ETag) rather than never stored: they are the same for every caller.
    return FileResponse(
        ASSETS_DIR / name,
        media_type=media_type,
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": DOCS_CSP},
    )


def page(title: str, openapi_url: str) -> str:
    assets = ASSETS_PATH
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)} API</title>"
        f'<link rel="stylesheet" href="{assets}/swagger-ui.css">'
        f'<link rel="icon" type="image/png" href="{assets}/favicon.png">'
        "</head><body>"
        f'<div id="swagger-ui" data-openapi-url="{escape(openapi_url)}"></div>'
        f'<script src="{assets}/swagger-ui-bundle.js"></script>'
        f'<script src="{assets}/init.js"></script>'
        "</body></html>\n"
    )
