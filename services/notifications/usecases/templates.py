"""Message templates: a preview of each, rendered with sample data."""

from __future__ import annotations

from services.notifications.api.schemas import TemplatePreviewOut
from services.notifications.domain import templates
from shared.web.problems import Problem


def preview(name: str, locale: str | None) -> TemplatePreviewOut:
    """The template rendered with sample data in the locale asked for (English when the
    template has no text in that language)."""
    try:
        message = templates.render(name, locale, templates.SAMPLE_PARAMS)
    except templates.UnknownTemplate:
        raise Problem(
            404, "Not found", f"no template named {name!r}", slug="unknown-template"
        ) from None
    return TemplatePreviewOut(
        template=name,
        locale=message.locale,
        subject=message.subject,
        text=message.body,
        html=message.html,
    )
