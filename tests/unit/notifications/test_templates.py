"""Message texts: every template in English, locale fallback, params filled in."""

import pytest

from services.notifications.domain import templates
from services.notifications.domain.templates import (
    SAMPLE_PARAMS,
    TEMPLATES,
    MissingParam,
    UnknownTemplate,
    language_of,
    render,
    resolve_locale,
)

LOCALES = ("en", "it", "fi", "pl")
PARAMS = SAMPLE_PARAMS


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_template_has_english_and_renders(template: str) -> None:
    assert "en" in TEMPLATES[template]
    message = render(template, "en", PARAMS)
    assert message.subject.strip()
    assert message.body.strip()
    # every placeholder was filled
    assert "{" not in message.subject + message.body + message.html


@pytest.mark.parametrize("template", sorted(TEMPLATES))
@pytest.mark.parametrize("locale", LOCALES)
def test_every_template_exists_in_every_supported_locale(template: str, locale: str) -> None:
    message = render(template, locale, PARAMS)
    assert message.locale == locale
    assert "{" not in message.subject + message.body + message.html
    assert f'<html lang="{locale}">' in message.html


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_template_is_really_translated(template: str) -> None:
    bodies = {render(template, locale, PARAMS).body for locale in LOCALES}
    assert len(bodies) == len(LOCALES)


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
    with pytest.raises(MissingParam):
        render("tier_up", "en", {})


def test_every_locale_names_every_tier() -> None:
    tiers = set(templates.TIER_NAMES["en"])
    for locale in LOCALES:
        assert set(templates.TIER_NAMES[locale]) == tiers


@pytest.mark.parametrize(
    ("locale", "points", "shown"),
    [
        ("en", 1, "1 point"),
        ("en", 1250, "1,250 points"),
        ("it", 1, "1 punto"),
        ("it", 1250, "1.250 punti"),
        ("fi", 1, "1 piste"),
        ("fi", 7, "7 pistettä"),
        ("pl", 1, "1 punkt"),
        ("pl", 3, "3 punkty"),
        ("pl", 22, "22 punkty"),
        ("pl", 5, "5 punktów"),
        ("pl", 12, "12 punktów"),
    ],
)
def test_points_take_the_locale_number_format_and_plural_form(
    locale: str, points: int, shown: str
) -> None:
    message = render("redemption_confirmed", locale, {"points": points, "reward": "Mug"})
    assert shown in message.body.replace("\u00a0", " ")


@pytest.mark.parametrize(
    ("locale", "amount", "day"),
    [
        ("en", "€125.50", "January 31, 2027"),
        ("it", "125,50\u00a0€", "31 gennaio 2027"),
        ("fi", "125,50\u00a0€", "31. tammikuuta 2027"),
        ("pl", "125,50\u00a0€", "31 stycznia 2027"),
    ],
)
def test_amounts_and_dates_are_written_the_locale_way(locale: str, amount: str, day: str) -> None:
    body = render("tier_downgrade_warning", locale, PARAMS).body
    assert amount in body
    assert day in body


@pytest.mark.parametrize(("earnings", "shown"), [(2, "2 zakupy"), (5, "5 zakupów")])
def test_the_polish_digest_counts_purchases_in_the_right_form(earnings: int, shown: str) -> None:
    body = render("points_earned", "pl", {"points": 40, "earnings": earnings}).body
    assert shown in body


def test_a_digest_of_one_earning_does_not_mention_a_count() -> None:
    body = render("points_earned", "en", {"points": 40, "earnings": 1}).body
    assert "40 points." in body
    assert "purchases" not in body


def test_params_are_escaped_in_html_and_not_in_text() -> None:
    message = render("redemption_confirmed", "en", {"points": 5, "reward": "Fish & <Chips>"})
    assert "Fish & <Chips>" in message.body
    assert "Fish &amp; &lt;Chips&gt;" in message.html
    assert "<Chips>" not in message.html


def test_amounts_are_in_the_programs_currency_when_the_message_names_it() -> None:
    body = render("tier_downgrade_warning", "it", PARAMS | {"currency": "PLN"}).body
    assert "125,50\u00a0PLN" in body
    assert "€" not in body


MERGED_EXPIRY = {
    "points": 120,
    "expires_at": "2027-03-30T22:30:00+00:00",  # 01:30 on March 31 in Helsinki
    "expires_on": "2027-03-31",
    "expires_until": "2027-03-31",
    "warnings": 2,
    "warning_ids": ["w-1", "w-2"],
}


@pytest.mark.parametrize(
    ("locale", "subject"),
    [
        ("en", "120 points expire on March 31, 2027"),
        ("it", "120 punti scadono il 31 marzo 2027"),
        ("fi", "120 pistettä vanhenee 31. maaliskuuta 2027"),
        ("pl", "120 punktów wygasa 31 marca 2027"),
    ],
)
def test_a_merged_expiry_warning_says_the_total_and_the_customers_day(
    locale: str, subject: str
) -> None:
    message = render("points_expiring", locale, MERGED_EXPIRY)
    assert message.subject == subject
    assert "120" in message.body and "2027" in message.body


@pytest.mark.parametrize(
    ("locale", "subject"),
    [
        ("en", "120 points expire between March 29, 2027 and April 4, 2027"),
        ("it", "120 punti scadono tra il 29 marzo 2027 e il 4 aprile 2027"),
        ("fi", "120 pistettä vanhenee 29. maaliskuuta 2027 ja 4. huhtikuuta 2027 välillä"),
        ("pl", "120 punktów wygasa między 29 marca 2027 a 4 kwietnia 2027"),
    ],
)
def test_a_window_of_several_days_names_its_first_and_last_expiry_day(
    locale: str, subject: str
) -> None:
    params = {**MERGED_EXPIRY, "expires_on": "2027-03-29", "expires_until": "2027-04-04"}
    assert render("points_expiring", locale, params).subject == subject


@pytest.mark.parametrize("locale", LOCALES)
def test_an_expiry_warning_stored_before_the_merge_still_renders(locale: str) -> None:
    old = {"points": 20, "expires_at": "2027-03-31T12:00:00+00:00"}
    assert "2027" in render("points_expiring", locale, old).subject
