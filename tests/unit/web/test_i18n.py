"""Every page's words exist in every language, and a request's language is chosen as said."""

from __future__ import annotations

import pytest

from services.web.api.i18n import LOCALES, MESSAGES, locale_of, translate


@pytest.mark.parametrize("locale", LOCALES)
def test_every_language_has_every_word(locale: str) -> None:
    assert set(MESSAGES[locale]) == set(MESSAGES["en"])
    assert all(text.strip() for text in MESSAGES[locale].values())


def test_the_language_comes_from_the_query_the_cookie_or_the_browser() -> None:
    assert locale_of("fi", "it", "pl") == "fi"
    assert locale_of(None, "it", "pl") == "it"
    assert locale_of(None, None, "de-DE,pl;q=0.8,it;q=0.5") == "pl"
    assert locale_of("xx", None, "de") == "en"


def test_a_word_takes_its_values() -> None:
    assert translate("en", "error.unavailable", service="points").endswith(": points.")
