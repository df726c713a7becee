"""redemption_confirmed with a coupon, in every locale: the code and the member's last day in
the text, the QR image in the HTML, the code in the SMS; a free-form redemption unchanged;
the preview shows a sample code and its QR code."""

from __future__ import annotations

import base64
import re

import pytest

from services.notifications.domain import templates
from services.notifications.domain.coupons import REDEMPTION_CONFIRMED, SAMPLE_CODE
from services.notifications.usecases.templates import preview
from tests.support.notifications import PNG_SIGNATURE, png_rows

LOCALES = tuple(templates.TEMPLATES[REDEMPTION_CONFIRMED])
CODE = "FDL7K2QM9XWA3HTR"
COUPON = {
    "points": 500,
    "reward": "Mug",
    "reward_id": "rw-1",
    "coupon_id": "cp-1",
    "expires_at": "2027-03-30T22:30:00+00:00",
    "expires_on": "2027-03-31",
    "code": CODE,
}
DAYS = {
    "en": "March 31, 2027",
    "it": "31 marzo 2027",
    "fi": "31. maaliskuuta 2027",
    "pl": "31 marca 2027",
}


def test_every_locale_of_the_service_has_the_coupon() -> None:
    assert set(LOCALES) == set(DAYS) == set(templates.UNSUBSCRIBE_LINES)


@pytest.mark.parametrize("locale", LOCALES)
def test_the_coupons_code_and_last_day_are_in_both_parts_in_every_locale(locale: str) -> None:
    message = templates.render(REDEMPTION_CONFIRMED, locale, COUPON, qr_src="cid:qr@fedelta")
    assert message.locale == locale
    assert CODE in message.body and DAYS[locale] in message.body
    assert CODE in message.html and DAYS[locale] in message.html
    assert '<img src="cid:qr@fedelta" alt="FDL7K2QM9XWA3HTR">' in message.html
    assert CODE not in message.subject  # a subject shows in lists and notifications
    assert message.body.count("\n\n") == 2  # greeting, redemption, coupon: three paragraphs


@pytest.mark.parametrize("locale", LOCALES)
def test_the_sms_carries_the_code_in_every_locale(locale: str) -> None:
    sms = templates.render_sms(REDEMPTION_CONFIRMED, locale, COUPON).body
    assert sms.startswith(templates.SMS_PREFIX)
    assert CODE in sms and DAYS[locale] in sms
    assert len(sms) <= 160


@pytest.mark.parametrize("locale", LOCALES)
def test_a_free_form_redemption_reads_as_before(locale: str) -> None:
    plain = {"points": 500, "reward": "Mug"}
    message = templates.render(REDEMPTION_CONFIRMED, locale, plain)
    assert message.body.count("\n\n") == 1 and "<img" not in message.html
    assert "<p></p>" not in message.html
    subject = templates.TEMPLATES[REDEMPTION_CONFIRMED][locale].subject
    assert templates.render_sms(REDEMPTION_CONFIRMED, locale, plain).body == (
        templates.SMS_PREFIX + subject
    )


def test_the_code_is_escaped_in_html_and_not_in_text() -> None:
    message = templates.render(REDEMPTION_CONFIRMED, "en", COUPON | {"code": "A<B&C"}, qr_src="x")
    assert "A<B&C" in message.body
    assert "A&lt;B&amp;C" in message.html and "A<B" not in message.html


@pytest.mark.parametrize("locale", LOCALES)
def test_the_preview_shows_a_sample_code_and_its_qr_code(locale: str) -> None:
    shown = preview(REDEMPTION_CONFIRMED, locale)
    assert shown.locale == locale
    assert SAMPLE_CODE in shown.text and SAMPLE_CODE in shown.html
    (uri,) = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', shown.html)
    image = base64.b64decode(uri)
    assert image.startswith(PNG_SIGNATURE)
    width, height, _ = png_rows(image)
    assert width == height > 0


def test_other_previews_show_no_coupon() -> None:
    shown = preview("tier_up", "en")
    assert SAMPLE_CODE not in shown.text and "<img" not in shown.html
