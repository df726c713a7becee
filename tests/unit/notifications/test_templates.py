"""Message texts: every template in English, locale fallback, params filled in."""

import pytest

from services.notifications.domain import templates
from services.notifications.domain.templates import (
    TEMPLATES,
    UnknownTemplate,
    language_of,
    render,
    resolve_locale,
)

LOCALES = ("en", "it", "fi", "pl")
PARAMS = {"tier": "gold"}


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_template_has_english_and_renders(template: str) -> None:
    assert "en" in TEMPLATES[template]
    message = render(template, "en", PARAMS)
    assert message.subject.strip()
    assert message.body.strip()
    assert "{" not in message.subject + message.body  # every placeholder was filled


@pytest.mark.parametrize("template", ["welcome", "tier_up"])
@pytest.mark.parametrize("locale", LOCALES)
def test_the_first_templates_exist_in_every_supported_locale(template: str, locale: str) -> None:
    message = render(template, locale, PARAMS)
    assert message.locale == locale


def test_locales_are_really_translated() -> None:
    subjects = {render("welcome", locale, {}).subject for locale in LOCALES}
    assert len(subjects) == len(LOCALES)


@pytest.mark.parametrize(
    ("locale", "language"),
    [("it-IT", "it"), ("it_IT", "it"), ("FI", "fi"), ("pl-PL", "pl"), ("", "en"), (None, "en")],
)
def test_language_of_a_locale_tag(locale: str | None, language: str) -> None:
    assert language_of(locale) == language


def test_a_regional_locale_falls_back_to_its_language() -> None:
    assert resolve_locale("welcome", "it-IT") == "it"
    assert render("welcome", "it-IT", {}) == render("welcome", "it", {})


@pytest.mark.parametrize("locale", ["xx", "de-DE", "sv"])
def test_an_unsupported_locale_falls_back_to_english(locale: str) -> None:
    message = render("welcome", locale, {})
    assert message.locale == "en"
    assert message == render("welcome", "en", {})


@pytest.mark.parametrize(
    ("locale", "tier", "shown"),
    [
        ("en", "gold", "Gold"),
        ("en", "platinum", "Platinum"),
        ("it", "gold", "Oro"),
        ("fi", "silver", "Hopea"),
        ("pl", "gold", "Złoty"),
    ],
)
def test_tier_up_names_the_new_tier(locale: str, tier: str, shown: str) -> None:
    message = render("tier_up", locale, {"tier": tier})
    assert shown in message.subject
    assert shown in message.body


def test_a_tier_without_a_display_name_is_still_named() -> None:
    assert "Diamond" in render("tier_up", "en", {"tier": "diamond"}).body


def test_an_unknown_template_is_refused() -> None:
    with pytest.raises(UnknownTemplate):
        render("no_such_template", "en", {})


def test_a_missing_param_is_an_error_not_a_blank() -> None:
    with pytest.raises(KeyError):
        render("tier_up", "en", {})


def test_every_locale_names_every_tier() -> None:
    tiers = set(templates.TIER_NAMES["en"])
    for locale in LOCALES:
        assert set(templates.TIER_NAMES[locale]) == tiers
