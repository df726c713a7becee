"""Message texts per template and locale, with a fallback to English. Pure: no I/O.

Each template is a row of TEMPLATES: a subject and the paragraphs of the message, in Jinja2,
for English at least. The paragraphs are rendered twice, as plain text and (autoescaped)
inside the HTML layout, so the two parts of an email never say different things. Numbers,
amounts, dates and plural forms go through Babel in the locale used: templates call
`points_text(n)`, `plural(n, one=..., few=..., many=..., other=...)`, `format_number(n)`,
`format_money(a)`, `format_date(iso)`, `format_moment(iso, zone)` and `tier_name(id)`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from babel import Locale
from babel.dates import format_date, format_time
from babel.numbers import format_currency, format_decimal

from services.notifications.domain.coupons import SAMPLE_CODE

DEFAULT_LOCALE = "en"
DEFAULT_CURRENCY = "EUR"


@dataclass(frozen=True)
class Template:
    subject: str
    paragraphs: tuple[str, ...]
    # The SMS text, when it is not the subject (a coupon's code must be in it).
    sms: str | None = None


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    body: str  # plain text
    html: str
    locale: str  # the locale actually used, after any fallback


class UnknownTemplate(LookupError):
    pass


class MissingParam(KeyError):
    """A template needs a param the message does not carry: a bug, which no retry fixes."""


def _t(subject: str, *paragraphs: str, sms: str | None = None) -> Template:
    return Template(subject=subject, paragraphs=paragraphs, sms=sms)


def _coupon(paragraph: str) -> str:
    """A paragraph only a coupon's confirmation has (its code, which the dispatcher adds at
    send time): rendered empty, and so left out, for a free-form redemption."""
    return "{% if code is defined %}" + paragraph + "{% endif %}"


def _coupon_sms(subject: str, coupon: str) -> str:
    return subject + _coupon(coupon)


def _gift_or(gift: str, redeemed: str) -> str:
    """A gift coupon's words (`gift`: engagement gave the reward, no points spent) or a
    redemption's."""
    return "{% if gift | default(false) %}" + gift + "{% else %}" + redeemed + "{% endif %}"


def _expiry_when(on: str, between: str) -> str:
    """When a merged expiry warning's points expire, in its words: `on` one local day
    (`{date}`), or `between` the first and the last of a window of several (`{first}`,
    `{last}`). Warnings stored before the merge carry only `expires_at`."""
    first, last = "format_date(expires_on)", "format_date(expires_until)"
    return (
        "{% if expires_until is defined and expires_until != expires_on %}"
        + between.format(first="{{ " + first + " }}", last="{{ " + last + " }}")
        + "{% else %}"
        + on.format(date="{{ format_date(expires_on | default(expires_at)) }}")
        + "{% endif %}"
    )


_EXPIRY_WHEN = {
    "en": _expiry_when("on {date}", "between {first} and {last}"),
    "it": _expiry_when("il {date}", "tra il {first} e il {last}"),
    "fi": _expiry_when("{date}", "{first} ja {last} välillä"),
    "pl": _expiry_when("{date}", "między {first} a {last}"),
}

# A tier's routes (issue 25) in words: "2 more friends or €340.00 more". `#` is the count.
_ROUTE_WORDS: dict[str, dict[str, Any]] = {
    "en": {
        "friends": {"one": "# more friend", "other": "# more friends"},
        "visits": {"one": "# more visit", "other": "# more visits"},
        "amount": "{money} more",
        "any": " or ",
        "all": " and ",
    },
    "it": {
        "friends": {"one": "# amico in più", "other": "# amici in più"},
        "visits": {"one": "# visita in più", "other": "# visite in più"},
        "amount": "{money} di acquisti in più",
        "any": " o ",
        "all": " e ",
    },
    "fi": {
        "friends": {"one": "# ystävä lisää", "other": "# ystävää lisää"},
        "visits": {"one": "# käynti lisää", "other": "# käyntiä lisää"},
        "amount": "{money} ostoksia lisää",
        "any": " tai ",
        "all": " ja ",
    },
    "pl": {
        "friends": {
            "one": "jeszcze # znajomy",
            "few": "jeszcze # znajomych",
            "many": "jeszcze # znajomych",
            "other": "jeszcze # znajomego",
        },
        "visits": {
            "one": "jeszcze # wizyta",
            "few": "jeszcze # wizyty",
            "many": "jeszcze # wizyt",
            "other": "jeszcze # wizyty",
        },
        "amount": "jeszcze {money} zakupów",
        "any": " lub ",
        "all": " i ",
    },
}


def _route_gaps(language: str) -> str:
    """Jinja for the tier messages' `route_*` params (set by the notifications handler only
    for a program with tiers reached by referrals or visits): each route's gap in words,
    joined by "or" when any route will do, by "and" when all must be met."""
    words = _ROUTE_WORDS[language]

    def counted(param: str, kind: str) -> str:
        forms = ", ".join(f"{form}={text!r}" for form, text in words[kind].items())
        return (
            f"{{% if {param} is defined %}}{{% set _ = gaps.append(plural({param}, {forms}) "
            f"| replace('#', format_number({param}))) %}}{{% endif %}}"
        )

    return (
        "{% set gaps = [] %}"
        + counted("route_referrals", "friends")
        + counted("route_visits", "visits")
        + "{% if route_amount is defined %}{% set _ = gaps.append("
        + repr(words["amount"])
        + " | replace('{money}', format_money(route_amount))) %}{% endif %}"
        + "{{ gaps | join("
        + repr(words["any"])
        + " if route_match == 'any' else "
        + repr(words["all"])
        + ") }}"
    )


def _routes_only(paragraph: str) -> str:
    """A paragraph only a tier message of a program with routes has."""
    return "{% if route_match is defined %}" + paragraph + "{% endif %}"


def _routes_or(with_routes: str, spend_only: str) -> str:
    return (
        "{% if route_match is defined %}" + with_routes + "{% else %}" + spend_only + "{% endif %}"
    )


def _reward(points: str, reward: str, pending: str = "") -> str:
    """The reward an engagement message names: `points` (`points` param), a catalogue
    reward (`reward_id`; its coupon, if it is one, comes in its own message), or `pending`
    when the message knows only that a reward is coming (`rewarded`)."""
    return (
        "{% if points is defined %}"
        + points
        + "{% elif reward_id is defined %}"
        + reward
        + "{% elif rewarded | default(false) %}"
        + pending
        + "{% endif %}"
    )


def _nth_card(text: str) -> str:
    """Said only from a member's second full card of a kind on: `#` is the count."""
    return (
        "{% if completed_count > 1 %}"
        + text.replace("#", "{{ format_number(completed_count) }}")
        + "{% endif %}"
    )


_ENGAGEMENT_REWARD = {
    "en": _reward(
        "We have added {{ points_text(points) }} to your account.",
        "A reward is waiting for you in your account.",
        "Your reward is on its way to your account.",
    ),
    "it": _reward(
        "Abbiamo aggiunto {{ points_text(points) }} al tuo conto.",
        "Un premio ti aspetta nel tuo conto.",
        "Il tuo premio sta arrivando nel tuo conto.",
    ),
    "fi": _reward(
        "Lisäsimme tilillesi {{ points_text(points) }}.",
        "Tililläsi odottaa sinua palkinto.",
        "Palkintosi on tulossa tilillesi.",
    ),
    "pl": _reward(
        "Dodaliśmy do Twojego konta {{ points_text(points) }}.",
        "Na Twoim koncie czeka na Ciebie nagroda.",
        "Twoja nagroda jest już w drodze na Twoje konto.",
    ),
}


# A win-back offer (domain/win_back_offers.py) in words: "double points and 500 bonus
# points". `{x}` is the multiplier (2 has words of its own), `#` the bonus per purchase.
_OFFER_WORDS: dict[str, dict[str, Any]] = {
    "en": {
        "double": "double points",
        "times": "{x}\u00d7 points",
        "bonus": {"one": "# bonus point", "other": "# bonus points"},
        "and": " and ",
    },
    "it": {
        "double": "punti doppi",
        "times": "punti \u00d7{x}",
        "bonus": {"one": "# punto bonus", "other": "# punti bonus"},
        "and": " e ",
    },
    "fi": {
        "double": "tuplapisteet",
        "times": "{x}-kertaiset pisteet",
        "bonus": {"one": "# bonuspiste", "other": "# bonuspistettä"},
        "and": " ja ",
    },
    "pl": {
        "double": "podwójne punkty",
        "times": "punkty \u00d7{x}",
        "bonus": {
            "one": "# punkt bonusowy",
            "few": "# punkty bonusowe",
            "many": "# punktów bonusowych",
            "other": "# punktu bonusowego",
        },
        "and": " i ",
    },
}


def _offer(language: str) -> str:
    """Jinja for what a win-back offer gives, from its `multiplier` and/or `bonus` params."""
    words = _OFFER_WORDS[language]
    forms = ", ".join(f"{form}={text!r}" for form, text in words["bonus"].items())
    double: str = words["double"]
    times: str = words["times"].replace("{x}", "{{ format_number(multiplier) }}")
    joined: str = words["and"]
    return (
        "{% if multiplier is defined %}{% if multiplier == '2' %}"
        + double
        + "{% else %}"
        + times
        + "{% endif %}{% if bonus is defined %}"
        + joined
        + "{% endif %}{% endif %}"
        + f"{{% if bonus is defined %}}{{{{ plural(bonus, {forms}) "
        + "| replace('#', format_number(bonus)) }}{% endif %}"
    )


_OFFER_END = "{{ format_date(ends_on) }}"

TEMPLATES: dict[str, dict[str, Template]] = {
    "welcome": {
        "en": _t(
            "Welcome to Fedelta",
            "Hello,",
            "thank you for joining our loyalty programme. From now on every purchase earns "
            "you points, and your welcome bonus is already waiting in your account.",
            "See you soon!",
        ),
        "it": _t(
            "Benvenuto in Fedelta",
            "Ciao,",
            "grazie per esserti iscritto al nostro programma fedeltà. D'ora in poi ogni "
            "acquisto ti fa guadagnare punti, e il tuo bonus di benvenuto ti aspetta già nel "
            "tuo conto.",
            "A presto!",
        ),
        "fi": _t(
            "Tervetuloa Fedeltaan",
            "Hei,",
            "kiitos, että liityit kanta-asiakasohjelmaamme. Tästä lähtien jokainen ostos "
            "kerryttää sinulle pisteitä, ja tervetuliaisbonuksesi odottaa jo tililläsi.",
            "Nähdään pian!",
        ),
        "pl": _t(
            "Witamy w Fedelta",
            "Dzień dobry,",
            "dziękujemy za dołączenie do naszego programu lojalnościowego. Od teraz każdy "
            "zakup przynosi Ci punkty, a Twój bonus powitalny czeka już na Twoim koncie.",
            "Do zobaczenia!",
        ),
    },
    "points_earned": {
        "en": _t(
            "You have earned {{ points_text(points) }}",
            "Hello,",
            "you have just earned {{ points_text(points) }}"
            "{% if earnings > 1 %} on {{ earnings }} purchases{% endif %}. "
            "Thank you for shopping with us!",
        ),
        "it": _t(
            "Hai guadagnato {{ points_text(points) }}",
            "Ciao,",
            "hai appena guadagnato {{ points_text(points) }}"
            "{% if earnings > 1 %} con {{ earnings }} acquisti{% endif %}. "
            "Grazie per i tuoi acquisti!",
        ),
        "fi": _t(
            "Sait {{ points_text(points) }}",
            "Hei,",
            "sait juuri {{ points_text(points) }}"
            "{% if earnings > 1 %} {{ earnings }} ostoksesta{% endif %}. "
            "Kiitos, että asioit kanssamme!",
        ),
        "pl": _t(
            "Zdobyłeś {{ points_text(points) }}",
            "Dzień dobry,",
            "właśnie otrzymałeś {{ points_text(points) }}"
            "{% if earnings > 1 %} za {{ earnings }} "
            "{{ plural(earnings, one='zakup', few='zakupy', many='zakupów', other='zakupu') }}"
            "{% endif %}. Dziękujemy za zakupy!",
        ),
    },
    "redemption_confirmed": {
        "en": _t(
            "Your reward is confirmed",
            "Hello,",
            _gift_or(
                "thank you for your loyalty: {{ reward }} is our gift to you. Enjoy it!",
                "you have redeemed {{ points_text(points) }} for: {{ reward }}. Enjoy it!",
            ),
            _coupon(
                "Your coupon code is {{ code }}: show it at the till by "
                "{{ format_date(expires_on) }}. It can be used once."
            ),
            sms=_coupon_sms(
                "Your reward is confirmed",
                ". Coupon code {{ code }}, valid until {{ format_date(expires_on) }}",
            ),
        ),
        "it": _t(
            "Il tuo premio è confermato",
            "Ciao,",
            _gift_or(
                "grazie per la tua fedeltà: {{ reward }} è il nostro regalo per te. Goditelo!",
                "hai utilizzato {{ points_text(points) }} per: {{ reward }}. Goditelo!",
            ),
            _coupon(
                "Il tuo codice coupon è {{ code }}: mostralo alla cassa entro il "
                "{{ format_date(expires_on) }}. Si può usare una sola volta."
            ),
            sms=_coupon_sms(
                "Il tuo premio è confermato",
                ". Codice coupon {{ code }}, valido fino al {{ format_date(expires_on) }}",
            ),
        ),
        "fi": _t(
            "Palkintosi on vahvistettu",
            "Hei,",
            _gift_or(
                "kiitos uskollisuudestasi: {{ reward }} on lahjamme sinulle. Nauti siitä!",
                "käytit {{ points_text(points) }} palkintoon: {{ reward }}. Nauti siitä!",
            ),
            _coupon(
                "Kuponkikoodisi on {{ code }}: näytä se kassalla viimeistään "
                "{{ format_date(expires_on) }}. Koodin voi käyttää kerran."
            ),
            sms=_coupon_sms(
                "Palkintosi on vahvistettu",
                ". Kuponkikoodi {{ code }}, voimassa {{ format_date(expires_on) }} asti",
            ),
        ),
        "pl": _t(
            "Twoja nagroda została potwierdzona",
            "Dzień dobry,",
            _gift_or(
                "dziękujemy za Twoją lojalność: {{ reward }} to nasz prezent dla Ciebie. "
                "Miłego korzystania!",
                "wymieniłeś {{ points_text(points) }} na: {{ reward }}. Miłego korzystania!",
            ),
            _coupon(
                "Twój kod kuponu to {{ code }}: okaż go przy kasie do "
                "{{ format_date(expires_on) }}. Można go użyć tylko raz."
            ),
            sms=_coupon_sms(
                "Twoja nagroda została potwierdzona",
                ". Kod kuponu {{ code }}, ważny do {{ format_date(expires_on) }}",
            ),
        ),
    },
    "points_expiring": {
        "en": _t(
            "{{ points_text(points) | capitalize }} "
            "{{ plural(points, one='expires', other='expire') }} " + _EXPIRY_WHEN["en"],
            "Hello,",
            "{{ points_text(points) }} in your account will expire " + _EXPIRY_WHEN["en"] + ". "
            "Redeem your points for a reward before then so that nothing is lost.",
        ),
        "it": _t(
            "{{ points_text(points) }} {{ plural(points, one='scade', other='scadono') }} "
            + _EXPIRY_WHEN["it"],
            "Ciao,",
            _EXPIRY_WHEN["it"] + " {{ plural(points, one='scadrà', other='scadranno') }} "
            "{{ points_text(points) }} del tuo conto. Usa i tuoi punti per un premio prima di "
            "allora, così non andrà perso nulla.",
        ),
        "fi": _t(
            "{{ points_text(points) }} vanhenee " + _EXPIRY_WHEN["fi"],
            "Hei,",
            _EXPIRY_WHEN["fi"] + " tililtäsi vanhenee {{ points_text(points) }}. "
            "Käytä pisteesi palkintoon ennen sitä, jotta mitään ei mene hukkaan.",
        ),
        "pl": _t(
            "{{ points_text(points) }} "
            "{{ plural(points, one='wygasa', few='wygasają', many='wygasa', other='wygasa') }} "
            + _EXPIRY_WHEN["pl"],
            "Dzień dobry,",
            _EXPIRY_WHEN["pl"] + " na Twoim koncie "
            "{{ plural(points, one='wygaśnie', few='wygasną', many='wygaśnie', "
            "other='wygaśnie') }} "
            "{{ points_text(points) }}. Wymień punkty na nagrodę wcześniej, aby nic nie przepadło.",
        ),
    },
    "tier_up": {
        "en": _t(
            "You have reached {{ tier_name(tier) }}",
            "Hello,",
            "congratulations: you are now a {{ tier_name(tier) }} member. Your new level earns "
            "you more points on every purchase.",
            _routes_only("Next: " + _route_gaps("en") + " to {{ tier_name(next_tier) }}."),
            "Thank you for your loyalty!",
        ),
        "it": _t(
            "Hai raggiunto il livello {{ tier_name(tier) }}",
            "Ciao,",
            "congratulazioni: ora sei un membro {{ tier_name(tier) }}. Il tuo nuovo livello ti fa "
            "guadagnare più punti su ogni acquisto.",
            _routes_only(
                "Prossimo traguardo: "
                + _route_gaps("it")
                + " per il livello {{ tier_name(next_tier) }}."
            ),
            "Grazie per la tua fedeltà!",
        ),
        "fi": _t(
            "Olet saavuttanut tason {{ tier_name(tier) }}",
            "Hei,",
            "onnittelut: olet nyt {{ tier_name(tier) }}-tason jäsen. Uusi tasosi kerryttää sinulle "
            "enemmän pisteitä jokaisesta ostoksesta.",
            _routes_only(
                "Seuraavaksi: " + _route_gaps("fi") + " tasoon {{ tier_name(next_tier) }}."
            ),
            "Kiitos uskollisuudestasi!",
        ),
        "pl": _t(
            "Osiągnąłeś poziom {{ tier_name(tier) }}",
            "Dzień dobry,",
            "gratulacje: jesteś teraz członkiem poziomu {{ tier_name(tier) }}. Nowy poziom "
            "przynosi "
            "Ci więcej punktów za każdy zakup.",
            _routes_only(
                "Kolejny krok: " + _route_gaps("pl") + " do poziomu {{ tier_name(next_tier) }}."
            ),
            "Dziękujemy za lojalność!",
        ),
    },
    "tier_downgrade_warning": {
        "en": _t(
            "Keep your {{ tier_name(tier) }} level",
            "Hello,",
            _routes_or(
                _route_gaps("en") + " by {{ format_date(review_at) }} will keep you a "
                "{{ tier_name(tier) }} member; otherwise your level becomes "
                "{{ tier_name(would_become) }}.",
                "spend {{ format_money(amount_to_keep_tier) }} more by "
                "{{ format_date(review_at) }} to stay a "
                "{{ tier_name(tier) }} member; otherwise your level becomes "
                "{{ tier_name(would_become) }}.",
            ),
        ),
        "it": _t(
            "Mantieni il tuo livello {{ tier_name(tier) }}",
            "Ciao,",
            _routes_or(
                "con " + _route_gaps("it") + " entro il {{ format_date(review_at) }} resti "
                "membro {{ tier_name(tier) }}; altrimenti il tuo livello diventerà "
                "{{ tier_name(would_become) }}.",
                "spendi ancora {{ format_money(amount_to_keep_tier) }} entro il "
                "{{ format_date(review_at) }} per "
                "restare membro {{ tier_name(tier) }}; altrimenti il tuo livello diventerà "
                "{{ tier_name(would_become) }}.",
            ),
        ),
        "fi": _t(
            "Säilytä {{ tier_name(tier) }}-tasosi",
            "Hei,",
            _routes_or(
                "pysyt {{ tier_name(tier) }}-tason jäsenenä, kun {{ format_date(review_at) }} "
                "mennessä kertyy: " + _route_gaps("fi") + "; muuten tasosi on jatkossa "
                "{{ tier_name(would_become) }}.",
                "osta vielä {{ format_money(amount_to_keep_tier) }} edestä "
                "{{ format_date(review_at) }} mennessä, "
                "niin pysyt {{ tier_name(tier) }}-tason jäsenenä; muuten tasosi on jatkossa "
                "{{ tier_name(would_become) }}.",
            ),
        ),
        "pl": _t(
            "Utrzymaj poziom {{ tier_name(tier) }}",
            "Dzień dobry,",
            _routes_or(
                "aby pozostać członkiem poziomu {{ tier_name(tier) }}, potrzebujesz do "
                "{{ format_date(review_at) }}: " + _route_gaps("pl") + "; w przeciwnym razie "
                "Twój poziom zmieni się na {{ tier_name(would_become) }}.",
                "wydaj jeszcze {{ format_money(amount_to_keep_tier) }} do "
                "{{ format_date(review_at) }}, aby "
                "pozostać członkiem poziomu {{ tier_name(tier) }}; w przeciwnym razie Twój poziom "
                "zmieni się na {{ tier_name(would_become) }}.",
            ),
        ),
    },
    "tier_down": {
        "en": _t(
            "Your level is now {{ tier_name(tier) }}",
            "Hello,",
            "your level has changed from {{ tier_name(from_tier) }} to {{ tier_name(tier) }}. "
            "Every "
            "purchase still earns you points, and you can climb back at any time.",
        ),
        "it": _t(
            "Il tuo livello ora è {{ tier_name(tier) }}",
            "Ciao,",
            "il tuo livello è passato da {{ tier_name(from_tier) }} a {{ tier_name(tier) }}. Ogni "
            "acquisto ti fa comunque guadagnare punti, e puoi risalire in qualsiasi momento.",
        ),
        "fi": _t(
            "Tasosi on nyt {{ tier_name(tier) }}",
            "Hei,",
            "tasosi on muuttunut: {{ tier_name(from_tier) }} → {{ tier_name(tier) }}. Jokainen "
            "ostos "
            "kerryttää edelleen pisteitä, ja voit nousta takaisin milloin tahansa.",
        ),
        "pl": _t(
            "Twój poziom to teraz {{ tier_name(tier) }}",
            "Dzień dobry,",
            "Twój poziom zmienił się z {{ tier_name(from_tier) }} na {{ tier_name(tier) }}. Każdy "
            "zakup "
            "nadal przynosi Ci punkty, a wrócić wyżej możesz w każdej chwili.",
        ),
    },
    "win_back": {
        "en": _t(
            "We miss you",
            "Hello,",
            "it has been a while since your last purchase. Your points are waiting for you, and "
            "every purchase earns you more: we look forward to seeing you again.",
        ),
        "it": _t(
            "Ci manchi",
            "Ciao,",
            "è passato un po' di tempo dal tuo ultimo acquisto. I tuoi punti ti aspettano, e "
            "ogni acquisto te ne fa guadagnare altri: speriamo di rivederti presto.",
        ),
        "fi": _t(
            "Kaipaamme sinua",
            "Hei,",
            "edellisestä ostoksestasi on jo aikaa. Pisteesi odottavat sinua, ja jokainen ostos "
            "kerryttää niitä lisää: toivottavasti näemme pian.",
        ),
        "pl": _t(
            "Tęsknimy za Tobą",
            "Dzień dobry,",
            "od Twoich ostatnich zakupów minęło już trochę czasu. Twoje punkty na Ciebie czekają, "
            "a każdy zakup przynosi kolejne: mamy nadzieję, że wkrótce znów się zobaczymy.",
        ),
    },
    # Win-back with a personal offer points granted (domain/win_back_offers.py).
    "win_back_offer": {
        "en": _t(
            "A gift for you: " + _offer("en") + " until " + _OFFER_END,
            "Hello,",
            "it has been a while since your last purchase, and we miss you. To welcome you "
            "back, you get " + _offer("en") + " on every purchase until " + _OFFER_END + ".",
            "We look forward to seeing you again!",
        ),
        "it": _t(
            "Un regalo per te: " + _offer("it") + " fino al " + _OFFER_END,
            "Ciao,",
            "è passato un po' di tempo dal tuo ultimo acquisto e ci manchi. Per darti il "
            "bentornato, ricevi " + _offer("it") + " su ogni acquisto fino al " + _OFFER_END + ".",
            "Speriamo di rivederti presto!",
        ),
        "fi": _t(
            "Lahja sinulle: " + _offer("fi") + " " + _OFFER_END + " asti",
            "Hei,",
            "edellisestä ostoksestasi on jo aikaa, ja kaipaamme sinua. Tervetuloa takaisin: "
            + _offer("fi")
            + " jokaisesta ostoksesta "
            + _OFFER_END
            + " asti.",
            "Toivottavasti näemme pian!",
        ),
        "pl": _t(
            "Prezent dla Ciebie: " + _offer("pl") + " do " + _OFFER_END,
            "Dzień dobry,",
            "od Twoich ostatnich zakupów minęło już trochę czasu i tęsknimy za Tobą. Na "
            "powitanie otrzymujesz " + _offer("pl") + " za każdy zakup do " + _OFFER_END + ".",
            "Mamy nadzieję, że wkrótce znów się zobaczymy!",
        ),
    },
    # Engagement (product §8; domain/engagement.py says which event tells what).
    "stamp_card_completed": {
        "en": _t(
            "Stamp card complete: {{ name }}",
            "Hello,",
            "you have collected {{ plural(stamps_required, one='the stamp', "
            "other='all ' ~ format_number(stamps_required) ~ ' stamps') }} of your stamp card "
            "“{{ name }}”" + _nth_card(": that makes # full cards") + ". A new card has begun.",
            _ENGAGEMENT_REWARD["en"],
            "Thank you for coming back!",
        ),
        "it": _t(
            "Tessera timbri completata: {{ name }}",
            "Ciao,",
            "hai raccolto {{ plural(stamps_required, one='il timbro', "
            "other='tutti i ' ~ format_number(stamps_required) ~ ' timbri') }} della tua "
            "tessera «{{ name }}»" + _nth_card(": sono già # tessere complete") + ". "
            "Una nuova tessera è già iniziata.",
            _ENGAGEMENT_REWARD["it"],
            "Grazie per essere tornato a trovarci!",
        ),
        "fi": _t(
            "Leimakortti täynnä: {{ name }}",
            "Hei,",
            "olet kerännyt {{ plural(stamps_required, one='leiman', "
            "other='kaikki ' ~ format_number(stamps_required) ~ ' leimaa') }} "
            "leimakorttiisi ”{{ name }}”" + _nth_card(": täysiä kortteja on jo #") + ". "
            "Uusi kortti on jo alkanut.",
            _ENGAGEMENT_REWARD["fi"],
            "Kiitos, että palasit!",
        ),
        "pl": _t(
            "Karta pieczątek pełna: {{ name }}",
            "Dzień dobry,",
            "zebrałeś komplet pieczątek ({{ format_number(stamps_required) }}) na karcie "
            "„{{ name }}”"
            + _nth_card(
                ": to już # {{ plural(completed_count, one='pełna karta', few='pełne karty', "
                "many='pełnych kart', other='pełnej karty') }}"
            )
            + ". "
            "Nowa karta już się zaczęła.",
            _ENGAGEMENT_REWARD["pl"],
            "Dziękujemy, że do nas wracasz!",
        ),
    },
    "challenge_completed": {
        "en": _t(
            "Challenge completed: {{ name }}",
            "Hello,",
            "congratulations: you have completed the challenge “{{ name }}”."
            "{% if badge is defined %} You have earned the badge “{{ badge }}”.{% endif %}",
            _ENGAGEMENT_REWARD["en"],
            "Thank you for your loyalty!",
        ),
        "it": _t(
            "Sfida completata: {{ name }}",
            "Ciao,",
            "congratulazioni: hai completato la sfida «{{ name }}»."
            "{% if badge is defined %} Hai conquistato il distintivo «{{ badge }}».{% endif %}",
            _ENGAGEMENT_REWARD["it"],
            "Grazie per la tua fedeltà!",
        ),
        "fi": _t(
            "Haaste suoritettu: {{ name }}",
            "Hei,",
            "onnittelut: olet suorittanut haasteen ”{{ name }}”."
            "{% if badge is defined %} Ansaitsit merkin ”{{ badge }}”.{% endif %}",
            _ENGAGEMENT_REWARD["fi"],
            "Kiitos uskollisuudestasi!",
        ),
        "pl": _t(
            "Wyzwanie ukończone: {{ name }}",
            "Dzień dobry,",
            "gratulacje: ukończyłeś wyzwanie „{{ name }}”."
            "{% if badge is defined %} Zdobyłeś odznakę „{{ badge }}”.{% endif %}",
            _ENGAGEMENT_REWARD["pl"],
            "Dziękujemy za lojalność!",
        ),
    },
    "badge_earned": {
        "en": _t(
            "New badge: {{ badge }}",
            "Hello,",
            "congratulations: you have earned the badge “{{ badge }}”. More challenges are "
            "waiting for you.",
        ),
        "it": _t(
            "Nuovo distintivo: {{ badge }}",
            "Ciao,",
            "congratulazioni: hai conquistato il distintivo «{{ badge }}». Altre sfide ti "
            "aspettano.",
        ),
        "fi": _t(
            "Uusi merkki: {{ badge }}",
            "Hei,",
            "onnittelut: ansaitsit merkin ”{{ badge }}”. Uusia haasteita odottaa sinua.",
        ),
        "pl": _t(
            "Nowa odznaka: {{ badge }}",
            "Dzień dobry,",
            "gratulacje: zdobyłeś odznakę „{{ badge }}”. Czekają na Ciebie kolejne wyzwania.",
        ),
    },
    "surprise": {
        "en": _t(
            "A surprise for you",
            "Hello,",
            "thank you for shopping with us: here is a surprise for you, “{{ name }}”.",
            _ENGAGEMENT_REWARD["en"],
            "Enjoy it!",
        ),
        "it": _t(
            "Una sorpresa per te",
            "Ciao,",
            "grazie per i tuoi acquisti: ecco una sorpresa per te, «{{ name }}».",
            _ENGAGEMENT_REWARD["it"],
            "Goditela!",
        ),
        "fi": _t(
            "Yllätys sinulle",
            "Hei,",
            "kiitos, että asioit kanssamme: tässä sinulle yllätys, ”{{ name }}”.",
            _ENGAGEMENT_REWARD["fi"],
            "Nauti siitä!",
        ),
        "pl": _t(
            "Niespodzianka dla Ciebie",
            "Dzień dobry,",
            "dziękujemy za zakupy: mamy dla Ciebie niespodziankę, „{{ name }}”.",
            _ENGAGEMENT_REWARD["pl"],
            "Miłego korzystania!",
        ),
    },
    "birthday": {
        "en": _t(
            "Happy birthday!",
            "Hello,",
            "happy birthday from all of us!",
            _ENGAGEMENT_REWARD["en"],
            "Have a wonderful day!",
        ),
        "it": _t(
            "Buon compleanno!",
            "Ciao,",
            "tanti auguri di buon compleanno da tutti noi!",
            _ENGAGEMENT_REWARD["it"],
            "Passa una splendida giornata!",
        ),
        "fi": _t(
            "Hyvää syntymäpäivää!",
            "Hei,",
            "hyvää syntymäpäivää meiltä kaikilta!",
            _ENGAGEMENT_REWARD["fi"],
            "Oikein ihanaa päivää!",
        ),
        "pl": _t(
            "Wszystkiego najlepszego!",
            "Dzień dobry,",
            "z okazji urodzin życzymy Ci wszystkiego najlepszego!",
            _ENGAGEMENT_REWARD["pl"],
            "Wspaniałego dnia!",
        ),
    },
    # Feedback (domain/feedback.py): an invitation after a purchase.
    "feedback_request": {
        "en": _t(
            "How was your visit?",
            "Hello,",
            "thank you for your purchase on {{ format_date(purchased_on) }}. How did it go? Tell "
            "us at the till or in the app: your feedback helps us do better.",
        ),
        "it": _t(
            "Com'è andata la tua visita?",
            "Ciao,",
            "grazie per il tuo acquisto del {{ format_date(purchased_on) }}. Com'è andata? "
            "Raccontacelo alla cassa o nell'app: il tuo parere ci aiuta a migliorare.",
        ),
        "fi": _t(
            "Millainen käyntisi oli?",
            "Hei,",
            "kiitos ostoksestasi {{ format_date(purchased_on) }}. Miten kaikki sujui? Kerro "
            "meille kassalla tai sovelluksessa: palautteesi auttaa meitä parantamaan.",
        ),
        "pl": _t(
            "Jak minęła Twoja wizyta?",
            "Dzień dobry,",
            "dziękujemy za zakupy w dniu {{ format_date(purchased_on) }}. Jak było? Powiedz nam "
            "przy kasie lub w aplikacji: Twoja opinia pomaga nam być lepszymi.",
        ),
    },
    # The wallet's one-time sign-in link (product §10), asked for by the member a moment ago:
    # `url` is added at send time from the sealed `link` (never stored in clear), and the
    # end of its validity is told in the member's time zone (`time_zone`).
    "sign_in": {
        "en": _t(
            "Your sign-in link",
            "Hello,",
            "here is your link to sign in to your loyalty wallet:",
            "{{ url }}",
            "It is valid until {{ format_moment(expires_at, time_zone) }} and can be used once. "
            "If you did not ask for it, ignore this message.",
        ),
        "it": _t(
            "Il tuo link di accesso",
            "Ciao,",
            "ecco il link per accedere al tuo portafoglio fedeltà:",
            "{{ url }}",
            "Scade il {{ format_moment(expires_at, time_zone) }} e si può usare una sola "
            "volta. Se non l'hai richiesto tu, ignora questo messaggio.",
        ),
        "fi": _t(
            "Kirjautumislinkkisi",
            "Hei,",
            "tässä on linkki, jolla kirjaudut kanta-asiakaslompakkoosi:",
            "{{ url }}",
            "Linkki on voimassa {{ format_moment(expires_at, time_zone) }} asti, ja sitä voi "
            "käyttää vain kerran. Jos et pyytänyt sitä, jätä tämä viesti huomiotta.",
        ),
        "pl": _t(
            "Twój link do logowania",
            "Dzień dobry,",
            "oto link do logowania w Twoim portfelu lojalnościowym:",
            "{{ url }}",
            "Link jest ważny do {{ format_moment(expires_at, time_zone) }} i można go użyć "
            "tylko raz. Jeśli nie prosiłeś o niego, zignoruj tę wiadomość.",
        ),
    },
}

# Parameters to render a template with when there is no real message: the preview.
SAMPLE_PARAMS: dict[str, Any] = {
    "points": 1250,
    "earnings": 3,
    "reward": "Coffee voucher",
    "expires_at": "2027-03-31T23:59:59+00:00",
    "expires_on": "2027-03-31",
    "expires_until": "2027-03-31",
    "tier": "gold",
    "from_tier": "silver",
    "would_become": "silver",
    "review_at": "2027-01-31T00:00:00+00:00",
    "amount_to_keep_tier": "125.50",
    # A coupon's confirmation: the code the dispatcher reads from points at send time.
    "code": SAMPLE_CODE,
    # Engagement: a stamp card's, a challenge's or a surprise's name, a badge, a full card.
    "name": "Summer of coffee",
    "badge": "Explorer",
    "stamps_required": 10,
    "completed_count": 2,
    "rewarded": True,
    # Feedback: the day of the purchase the member is invited to tell about.
    "purchased_on": "2027-03-30",
    # A win-back offer: double points and a bonus per purchase, until its last local day.
    "multiplier": "2",
    "bonus": 100,
    "ends_on": "2027-03-31",
    # A sign-in link (its `url` is unsealed at send time) and the member's time zone.
    "url": "https://wallet.example.com/wallet/sign-in/sample-token",
    "time_zone": "Europe/Rome",
}

# Tier names as a customer reads them; the events carry the lower-case ids.
TIER_NAMES: dict[str, dict[str, str]] = {
    "en": {"bronze": "Bronze", "silver": "Silver", "gold": "Gold", "platinum": "Platinum"},
    "it": {"bronze": "Bronzo", "silver": "Argento", "gold": "Oro", "platinum": "Platino"},
    "fi": {"bronze": "Pronssi", "silver": "Hopea", "gold": "Kulta", "platinum": "Platina"},
    "pl": {"bronze": "Brązowy", "silver": "Srebrny", "gold": "Złoty", "platinum": "Platynowy"},
}

# The word for points by CLDR plural category (Polish: 1 punkt, 2 punkty, 5 punktów, 1,5 punktu).
POINT_WORDS: dict[str, dict[str, str]] = {
    "en": {"one": "point", "other": "points"},
    "it": {"one": "punto", "other": "punti"},
    "fi": {"one": "piste", "other": "pistettä"},
    "pl": {"one": "punkt", "few": "punkty", "many": "punktów", "other": "punktu"},
}

# The last paragraph of every email, before its unsubscribe link.
UNSUBSCRIBE_LINES: dict[str, str] = {
    "en": "Don't want these emails any more? Unsubscribe:",
    "it": "Non vuoi più ricevere queste email? Annulla l'iscrizione:",
    "fi": "Etkö halua enää näitä sähköposteja? Peru tilaus:",
    "pl": "Nie chcesz już otrzymywać tych wiadomości? Wypisz się:",
}

_HTML_LAYOUT = (
    '<!DOCTYPE html>\n<html lang="{{ locale }}">\n<head><meta charset="utf-8">'
    "<title>{{ subject }}</title></head>\n<body>\n"
    # Each paragraph was rendered (and so escaped) by the HTML environment already.
    "{% for paragraph in paragraphs %}<p>{{ paragraph | safe }}</p>\n{% endfor %}"
    # A coupon's QR code: an inline image of the email (cid:), or a data: URI in a preview.
    '{% if qr_src %}<p><img src="{{ qr_src }}" alt="{{ qr_alt }}"></p>\n{% endif %}'
    "{% if unsubscribe_url %}<p><small>{{ unsubscribe_line }} "
    '<a href="{{ unsubscribe_url }}">{{ unsubscribe_url }}</a></small></p>\n{% endif %}'
    "</body>\n</html>\n"
)

# Plain text is not HTML: escaping it would show "&amp;" to the reader.
_TEXT = jinja2.Environment(
    autoescape=False,  # noqa: S701
    undefined=jinja2.StrictUndefined,
)
_HTML = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)


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


def render(
    template: str,
    locale: str | None,
    params: Mapping[str, Any],
    *,
    unsubscribe_url: str | None = None,
    qr_src: str | None = None,
) -> RenderedMessage:
    """The message in the customer's language (or English), ending with the unsubscribe
    link when one is given; a coupon's QR image (`qr_src`, its `cid:` or `data:` URI) in
    the HTML after the paragraphs, the code its alternative text. A paragraph that renders
    empty (one only some messages have) is left out of both parts."""
    used = resolve_locale(template, locale)
    text = TEMPLATES[template][used]
    values = {**params, **_helpers(used, _currency(params))}
    try:
        subject = _compiled(_TEXT, text.subject).render(values)
        rendered = [
            (_compiled(_TEXT, p).render(values), _compiled(_HTML, p).render(values))
            for p in text.paragraphs
        ]
    except jinja2.UndefinedError as error:
        raise MissingParam(f"template {template!r} misses a param: {error.message}") from None
    plain = [as_text for as_text, _ in rendered if as_text.strip()]
    escaped = [as_html for as_text, as_html in rendered if as_text.strip()]
    line = UNSUBSCRIBE_LINES.get(used, UNSUBSCRIBE_LINES[DEFAULT_LOCALE])
    html = _compiled(_HTML, _HTML_LAYOUT).render(
        locale=used,
        subject=subject,
        paragraphs=escaped,
        unsubscribe_url=unsubscribe_url,
        unsubscribe_line=line,
        qr_src=qr_src,
        qr_alt=params.get("code", ""),
    )
    if unsubscribe_url:
        plain.append(f"--\n{line} {unsubscribe_url}")
    return RenderedMessage(subject=subject, body="\n\n".join(plain) + "\n", html=html, locale=used)


# An SMS is the message's subject (or its own SMS text: a coupon's code), which every template
# writes per locale as one short line, after the programme's name: 160 GSM-7 characters at
# most in practice, and no link, since SMS consent is withdrawn through the customer's
# preferences or their partner.
SMS_PREFIX = "Fedelta: "
SMS_MAX_LENGTH = 320


def render_sms(template: str, locale: str | None, params: Mapping[str, Any]) -> RenderedMessage:
    """The short text of a message for SMS, in the customer's language (or English): its
    own SMS text when the template has one, else its subject."""
    used = resolve_locale(template, locale)
    values = {**params, **_helpers(used, _currency(params))}
    chosen = TEMPLATES[template][used]
    try:
        subject = _compiled(_TEXT, chosen.sms or chosen.subject).render(values)
    except jinja2.UndefinedError as error:
        raise MissingParam(f"template {template!r} misses a param: {error.message}") from None
    text = (SMS_PREFIX + subject.strip())[:SMS_MAX_LENGTH]
    return RenderedMessage(subject=subject, body=text, html="", locale=used)


@cache
def _compiled(environment: jinja2.Environment, source: str) -> jinja2.Template:
    return environment.from_string(source)


def _currency(params: Mapping[str, Any]) -> str:
    """The currency amounts are in: the program's, carried by the message (`currency`)."""
    currency = params.get("currency")
    return currency if isinstance(currency, str) and currency else DEFAULT_CURRENCY


def _helpers(locale: str, currency: str = DEFAULT_CURRENCY) -> dict[str, Callable[..., str]]:
    babel_locale = Locale.parse(locale)

    def plural(count: int | Decimal, **forms: str) -> str:
        category = babel_locale.plural_form(count)
        return forms.get(category) or forms["other"]

    def number(value: int | Decimal | str) -> str:
        return format_decimal(_decimal(value), locale=babel_locale)

    def points(count: int) -> str:
        return f"{number(count)} {plural(count, **POINT_WORDS.get(locale, POINT_WORDS['en']))}"

    def money(amount: Decimal | str) -> str:
        return format_currency(_decimal(amount), currency, locale=babel_locale)

    def day(value: str | date) -> str:
        when = datetime.fromisoformat(value).date() if isinstance(value, str) else value
        return format_date(when, format="long", locale=babel_locale)

    def tier(name: str) -> str:
        names = TIER_NAMES.get(locale, TIER_NAMES[DEFAULT_LOCALE])
        return names.get(name, name.capitalize())

    def moment(value: str, zone: str) -> str:
        """An instant as the member's wall clock shows it: the long date and the short time,
        joined as the locale joins them ("December 6, 2026, 9:45 PM")."""
        when = datetime.fromisoformat(value).astimezone(_zone(zone))
        return str(babel_locale.datetime_formats["medium"]).format(
            format_time(when, format="short", locale=babel_locale),
            format_date(when, format="long", locale=babel_locale),
        )

    # Names no template param uses, since params and helpers share the namespace.
    return {
        "plural": plural,
        "format_number": number,
        "points_text": points,
        "format_money": money,
        "format_date": day,
        "tier_name": tier,
        "format_moment": moment,
    }


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError):  # a name this host lacks: UTC, as the dispatcher does
        return ZoneInfo("UTC")


def _decimal(value: int | Decimal | str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValueError("not a number") from None
