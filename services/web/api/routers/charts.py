"""The dashboard's charts as SVG images, drawn on the server by pygal from insights' KPIs, with
nothing from elsewhere: pygal's tooltips script (from a CDN by default) is left out, and the
config it always writes into a <script> element never runs (a document shown by <img> runs no
script, and the image's CSP allows none). The page gives each an alt text and its figures in a
table."""

from collections.abc import Callable

import pygal
from babel.dates import format_date
from babel.numbers import format_decimal
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pygal.style import Style

from services.web.api.deps import ClockDep, ServicesDep, StaffDep
from services.web.api.i18n import translate
from services.web.api.pages import locale_for
from services.web.api.routers.console import FromQuery, ToQuery
from services.web.usecases import dashboard as usecases

router = APIRouter(prefix="/console/charts", include_in_schema=False)

# pygal styles its SVG inline; nothing else may load or run in it.
CHART_CSP = "default-src 'none'; style-src 'unsafe-inline'"
CHART_HEADERS = {
    "Content-Security-Policy": CHART_CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
# The pages' colours and fonts (static/app.css), the text large enough to read on a phone.
STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#1b1f24",
    foreground_strong="#1b1f24",
    foreground_subtle="#c9d2dc",
    colors=("#0b5cad",),
    font_family='system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif',
    label_font_size=14,
    major_label_font_size=14,
    value_font_size=14,
    tooltip_font_size=14,
)
COMMON = {
    "style": STYLE,
    "js": [],  # no tooltips script from a CDN (pygal's default)
    "show_legend": False,
    "width": 800,
    "height": 360,
    "truncate_label": -1,
    "margin": 16,
}


@router.get("/liability.svg")
async def liability(
    request: Request,
    who: StaffDep,
    services: ServicesDep,
    clock: ClockDep,
    start: FromQuery = None,
    end: ToQuery = None,
) -> Response:
    kpis = await _kpis(who.actor, services, clock, start, end)
    if isinstance(kpis, Response):
        return kpis
    locale = locale_for(request)
    chart = pygal.Line(
        **COMMON,
        value_formatter=_number(locale),
        show_dots=len(kpis.liability) <= 62,
        include_x_axis=True,  # from 0: the line's height is the liability's size
        stroke_style={"width": 3},
        x_label_rotation=30,
        show_minor_x_labels=False,
        x_labels_major_count=8,
    )
    chart.x_labels = [format_date(day, "d MMM", locale=locale) for day, _ in kpis.liability]
    chart.add(translate(locale, "console.chart.points"), [points for _, points in kpis.liability])
    return _svg(chart)


@router.get("/tiers.svg")
async def tiers(
    request: Request,
    who: StaffDep,
    services: ServicesDep,
    clock: ClockDep,
    start: FromQuery = None,
    end: ToQuery = None,
) -> Response:
    kpis = await _kpis(who.actor, services, clock, start, end)
    if isinstance(kpis, Response):
        return kpis
    locale = locale_for(request)
    chart = pygal.Bar(**COMMON, value_formatter=_number(locale), print_values=True)
    chart.x_labels = [translate(locale, f"console.tier.{name}") for name, _ in kpis.tiers]
    chart.add(translate(locale, "console.chart.members"), [count for _, count in kpis.tiers])
    return _svg(chart)


async def _kpis(
    actor: str, services: ServicesDep, clock: ClockDep, start: str | None, end: str | None
) -> usecases.Kpis | Response:
    now = clock.now()
    period = usecases.parse_period(start, end, now.date())
    if period is None:
        return Response(status_code=422, headers=CHART_HEADERS)
    board = await usecases.dashboard(services, actor, period, now)
    if board.kpis is None:
        return Response(status_code=503 if board.unavailable else 502, headers=CHART_HEADERS)
    return board.kpis


def _number(locale: str) -> Callable[[float], str]:
    def number(value: float) -> str:
        return format_decimal(value, locale=locale)

    return number


def _svg(chart: pygal.graph.graph.Graph) -> Response:
    return Response(chart.render(), media_type="image/svg+xml", headers=CHART_HEADERS)
