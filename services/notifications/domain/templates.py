"""Message texts per template and locale, with a fallback to English. Pure: no I/O.

Each template is a row of TEMPLATES; a new message type is a new row with English at least.
Bodies are plain text; `{tier}` and the like are filled from the delivery's params.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_LOCALE = "en"


@dataclass(frozen=True)
class Template:
    subject: str
    body: str


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    body: str
    locale: str  # the locale actually used, after any fallback


class UnknownTemplate(LookupError):
    pass


TEMPLATES: dict[str, dict[str, Template]] = {
    "welcome": {
        "en": Template(
            subject="Welcome to Fedelta",
            body=(
                "Hello,\n\n"
                "thank you for joining our loyalty programme. From now on every purchase "
                "earns you points, and your welcome bonus is already waiting in your "
                "account.\n\n"
                "See you soon!\n"
            ),
        ),
        "it": Template(
            subject="Benvenuto in Fedelta",
            body=(
                "Ciao,\n\n"
                "grazie per esserti iscritto al nostro programma fedeltà. D'ora in poi ogni "
                "acquisto ti fa guadagnare punti, e il tuo bonus di benvenuto ti aspetta già "
                "nel tuo conto.\n\n"
                "A presto!\n"
            ),
        ),
        "fi": Template(
            subject="Tervetuloa Fedeltaan",
            body=(
                "Hei,\n\n"
                "kiitos, että liityit kanta-asiakasohjelmaamme. Tästä lähtien jokainen "
                "ostos kerryttää sinulle pisteitä, ja tervetuliaisbonuksesi odottaa jo "
                "tililläsi.\n\n"
                "Nähdään pian!\n"
            ),
        ),
        "pl": Template(
            subject="Witamy w Fedelta",
            body=(
                "Dzień dobry,\n\n"
                "dziękujemy za dołączenie do naszego programu lojalnościowego. Od teraz "
                "każdy zakup przynosi Ci punkty, a Twój bonus powitalny czeka już na "
                "Twoim koncie.\n\n"
                "Do zobaczenia!\n"
            ),
        ),
    },
    "tier_up": {
        "en": Template(
            subject="You have reached {tier}",
            body=(
                "Hello,\n\n"
                "congratulations: you are now a {tier} member. Your new level earns you "
                "more points on every purchase.\n\n"
                "Thank you for your loyalty!\n"
            ),
        ),
        "it": Template(
            subject="Hai raggiunto il livello {tier}",
            body=(
                "Ciao,\n\n"
                "congratulazioni: ora sei un membro {tier}. Il tuo nuovo livello ti fa "
                "guadagnare più punti su ogni acquisto.\n\n"
                "Grazie per la tua fedeltà!\n"
            ),
        ),
        "fi": Template(
            subject="Olet saavuttanut tason {tier}",
            body=(
                "Hei,\n\n"
                "onnittelut: olet nyt {tier}-tason jäsen. Uusi tasosi kerryttää sinulle "
                "enemmän pisteitä jokaisesta ostoksesta.\n\n"
                "Kiitos uskollisuudestasi!\n"
            ),
        ),
        "pl": Template(
            subject="Osiągnąłeś poziom {tier}",
            body=(
                "Dzień dobry,\n\n"
                "gratulacje: jesteś teraz członkiem poziomu {tier}. Nowy poziom przynosi "
                "Ci więcej punktów za każdy zakup.\n\n"
                "Dziękujemy za lojalność!\n"
            ),
        ),
    },
}

# Tier names as a customer reads them; the events carry the lower-case ids.
TIER_NAMES: dict[str, dict[str, str]] = {
    "en": {"bronze": "Bronze", "silver": "Silver", "gold": "Gold", "platinum": "Platinum"},
    "it": {"bronze": "Bronzo", "silver": "Argento", "gold": "Oro", "platinum": "Platino"},
    "fi": {"bronze": "Pronssi", "silver": "Hopea", "gold": "Kulta", "platinum": "Platina"},
    "pl": {"bronze": "Brązowy", "silver": "Srebrny", "gold": "Złoty", "platinum": "Platynowy"},
}


def language_of(locale: str | None) -> str:
    """The language part of a locale tag ("it-IT", "it_IT", "IT" → "it")."""
    if not locale:
        return DEFAULT_LOCALE
    return locale.replace("_", "-").split("-", 1)[0].strip().lower() or DEFAULT_LOCALE


def resolve_locale(template: str, locale: str | None) -> str:
    """The locale a template will be rendered in: the customer's language if it has a text
    in it, English otherwise."""
    try:
        texts = TEMPLATES[template]
    except KeyError:
        raise UnknownTemplate(f"no template named {template!r}") from None
    language = language_of(locale)
    return language if language in texts else DEFAULT_LOCALE


def render(template: str, locale: str | None, params: Mapping[str, Any]) -> RenderedMessage:
    used = resolve_locale(template, locale)
    text = TEMPLATES[template][used]
    values = _display_values(used, params)
    return RenderedMessage(
        subject=text.subject.format_map(values), body=text.body.format_map(values), locale=used
    )


def _display_values(locale: str, params: Mapping[str, Any]) -> dict[str, str]:
    values = {name: str(value) for name, value in params.items()}
    if "tier" in values:
        tier = values["tier"]
        names = TIER_NAMES.get(locale, TIER_NAMES[DEFAULT_LOCALE])
        values["tier"] = names.get(tier, tier.capitalize())
    return values
