"""Message templates: a preview of each, rendered with sample data."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from services.notifications.api.deps import ReadScope
from services.notifications.api.schemas import Locale, TemplatePreviewOut
from services.notifications.usecases import templates
from shared.bounds import Label
from shared.web.problems import PROBLEM_JSON

router = APIRouter(prefix="/v1/templates", tags=["templates"])

_MEANINGS = {
    401: "A missing or unknown service token",
    404: "No template has that name",
    422: "Invalid request",
}


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"description": _MEANINGS[status], "content": {PROBLEM_JSON: {}}}
        for status in statuses
    }


@router.get(
    "/{name}/preview",
    response_model=TemplatePreviewOut,
    responses=_problems(401, 404, 422),
)
async def preview_template(
    name: Annotated[Label, Path()],
    _: ReadScope,
    locale: Annotated[Locale | None, Query()] = None,
) -> TemplatePreviewOut:
    """The template rendered with sample data in the locale asked for (English when the
    template has no text in that language); `locale` says which one was used."""
    return templates.preview(name, locale)
