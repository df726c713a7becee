"""Message templates: a preview of each, rendered with sample data."""

from __future__ import annotations

import base64

from services.notifications.api.schemas import TemplatePreviewOut
from services.notifications.domain import templates
from services.notifications.domain.coupons import REDEMPTION_CONFIRMED, SAMPLE_CODE, qr_png
from shared.web.problems import Problem


def preview(name: str, locale: str | None) -> TemplatePreviewOut:
    """The template rendered with sample data in the locale asked for (English when the
    template has no text in that language). A coupon's confirmation shows the sample code,
    and its QR code inline as a `data:` URI (an email carries it as an attached image)."""
    qr_src = None
    if name == REDEMPTION_CONFIRMED:
        qr_src = "data:image/png;base64," + base64.b64encode(qr_png(SAMPLE_CODE)).decode()
    try:
        message = templates.render(name, locale, templates.SAMPLE_PARAMS, qr_src=qr_src)
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
