"""Issue 21: the clients know the insights service. dev.env gives its URL
(`FEDELTA_INSIGHTS_URL`) and its tokens, and one written before it is refused, naming what
`make up` adds; `InsightsClient` reads a member's insights, the segments, a segment's members
and the KPIs with insights' own token (admin for a custom segment); `fedelta customer show`
prints the member's lifecycle, RFM scores, loyalty types with their reasons and segments, and
still shows the rest of the member when insights is down or does not know them yet."""

from __future__ import annotations

import functools
import json
from datetime import UTC, date, datetime
from io import StringIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from fedelta_cli import operations
from fedelta_cli.operations import insights_of, render_customer
from fedelta_client import InsightsClient, InternalClient, ServiceUrls, StackClient, Unavailable
from fedelta_client.devenv import ROLES, SERVICES, DevEnv, DevEnvError, token_variable

BEFORE_INSIGHTS = {
    "FEDELTA_INGEST_URL": "http://ingest:8080",
    "FEDELTA_POINTS_URL": "http://points:8081",
    "FEDELTA_TIERS_URL": "http://tiers:8082",
    "FEDELTA_NOTIFICATIONS_URL": "http://notifications:8083",
    "FEDELTA_ENGAGEMENT_URL": "http://engagement:8084",
    "FEDELTA_PARTNER_KEY": "fk",
    "FEDELTA_PARTNER_SECRET": "fs",
} | {
    token_variable(service, role): f"{service}-{role}"
    for service in ("ingest", "points", "tiers", "notifications", "engagement")
    for role in ROLES
}
INSIGHTS = {"FEDELTA_INSIGHTS_URL": "http://insights:8085/"} | {
    token_variable("insights", role): f"insights-{role}" for role in ROLES
}
# What came after insights (issue 22): a dev.env has the web too.
WEB = {"FEDELTA_WEB_URL": "http://web:8086"} | {
    token_variable("web", role): f"web-{role}" for role in ROLES
}
NOWHERE = Path("/nonexistent/dev.env")
ANNA = {
    "customer_id": "anna",
    "as_of": "2026-12-06T12:00:00Z",
    "rfm": {"recency_days": 12, "frequency": 8, "monetary": "240.00", "r": 5, "f": 4, "m": 3},
    "lifecycle": "active",
    "lifecycle_reason": "bought 12 days ago",
    "loyalty_types": [
        {"type": "happy", "reasons": ["buys every 9 days", "no complaint"]},
        {"type": "convenience", "reasons": ["one store: s-1"]},
    ],
    "segments": ["loyalty:happy", "lifecycle:active", "tier:gold"],
}


def env() -> DevEnv:
    return DevEnv.load(NOWHERE, environ=BEFORE_INSIGHTS | INSIGHTS | WEB)


def test_dev_env_holds_insights_url_and_tokens() -> None:
    loaded = env()
    assert "insights" in SERVICES
    assert loaded.insights_url == "http://insights:8085"  # the trailing slash removed
    assert loaded.service_url("insights") == loaded.insights_url
    assert loaded.token("insights", "read") == "insights-read"
    assert loaded.tokens_of("admin")["insights"] == "insights-admin"


def test_a_dev_env_from_before_insights_is_refused_naming_what_make_up_adds() -> None:
    with pytest.raises(DevEnvError) as raised:
        DevEnv.load(NOWHERE, environ=BEFORE_INSIGHTS)
    message = raised.value.message
    assert "FEDELTA_INSIGHTS_URL" in message
    assert "FEDELTA_INSIGHTS_READ_TOKEN" in message and "make up" in message
    assert "FEDELTA_ENGAGEMENT_URL" not in message


class Recorder:
    """A mock transport that answers each path with a canned body and keeps what was sent."""

    def __init__(self, answers: dict[str, tuple[int, Any]] | None = None) -> None:
        self.answers = answers or {}
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        status, body = self.answers.get(request.url.path, (200, {"items": []}))
        return httpx.Response(status, json=body)

    def seen(self) -> list[tuple[str, str, str, str]]:
        return [
            (r.method, r.url.path, r.url.query.decode(), r.headers["Authorization"])
            for r in self.sent
        ]


async def test_every_read_goes_to_insights_with_its_own_read_token() -> None:
    members = {"items": [{"customer_id": "anna", "since": "2026-11-01T00:00:00Z"}]}
    recorder = Recorder(
        {
            "/v1/customers/anna/insights": (200, ANNA),
            "/v1/segments": (200, {"items": [{"name": "loyalty:happy", "members": 3}]}),
            "/v1/segments/loyalty:happy/members": (200, members | {"next_cursor": "c2"}),
            "/v1/kpis": (200, {"active_members": 3}),
        }
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as http:
        insights = InsightsClient.from_dev_env(http, env())
        assert (await insights.customer_insights("anna")).json() == ANNA
        as_of = datetime(2026, 12, 6, 12, tzinfo=UTC)
        await insights.customer_insights("anna", as_of=as_of)
        assert await insights.segments() == [{"name": "loyalty:happy", "members": 3}]
        page = await insights.segment_members("loyalty:happy", cursor="c1", limit=50)
        assert page["items"] == members["items"] and page["next_cursor"] == "c2"
        assert await insights.kpis(date(2026, 11, 1), "2026-12-01") == {"active_members": 3}
        await insights.kpis(to=datetime(2026, 12, 1, tzinfo=UTC))
    read = "Bearer insights-read"
    assert recorder.seen() == [
        ("GET", "/v1/customers/anna/insights", "", read),
        ("GET", "/v1/customers/anna/insights", "as_of=2026-12-06T12%3A00%3A00%2B00%3A00", read),
        ("GET", "/v1/segments", "", read),
        ("GET", "/v1/segments/loyalty:happy/members", "cursor=c1&limit=50", read),
        ("GET", "/v1/kpis", "from=2026-11-01T00%3A00%3A00%2B00%3A00&to=2026-12-01", read),
        ("GET", "/v1/kpis", "to=2026-12-01T00%3A00%3A00%2B00%3A00", read),
    ]


async def test_a_custom_segment_is_created_with_the_admin_token_and_an_idempotency_key() -> None:
    recorder = Recorder({"/v1/segments": (201, {"name": "big-spenders"})})
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as http:
        admin = InternalClient.from_dev_env(http, env(), admin=True).insights()
        body = {"name": "big-spenders", "rule": {"monetary_at_least": "500.00"}}
        assert await admin.create_segment(body, idempotency_key="k-1") == {"name": "big-spenders"}
        await admin.create_segment(body)
    first, second = recorder.sent
    assert (first.method, first.url.path) == ("POST", "/v1/segments")
    assert first.headers["Authorization"] == "Bearer insights-admin"
    assert first.headers["Idempotency-Key"] == "k-1" and json.loads(first.content) == body
    assert second.headers["Idempotency-Key"] not in ("", "k-1")  # a new one unless given


async def test_a_missing_member_is_an_answer_and_a_failing_read_raises() -> None:
    recorder = Recorder(
        {
            "/v1/customers/nobody/insights": (404, {"detail": "unknown customer"}),
            "/v1/kpis": (503, {"detail": "database unavailable"}),
        }
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as http:
        stack = StackClient(env(), http)
        assert (await stack.customer_insights("nobody")).status_code == 404
        with pytest.raises(Unavailable, match="database unavailable"):
            await stack.reader.insights().kpis("2026-11-01", "2026-12-01")
    assert recorder.sent[0].headers["Authorization"] == "Bearer insights-read"


async def test_service_urls_without_insights_name_it_when_it_is_called() -> None:
    urls = ServiceUrls("http://i", "http://p", "http://t", "http://n", "http://e")
    async with httpx.AsyncClient(transport=httpx.MockTransport(Recorder())) as http:
        client = InternalClient(http, urls=urls, token="t")
        with pytest.raises(ValueError, match="no URL given for the service 'insights'"):
            client.insights()
    assert "insights" not in urls.known()


# --- `fedelta customer show` ------------------------------------------------------------------


def shown(view: dict[str, Any]) -> str:
    console = Console(file=StringIO(), width=200, color_system=None)
    render_customer("anna", view, console)
    out = console.file
    assert isinstance(out, StringIO)
    return out.getvalue()


BASE_VIEW: dict[str, Any] = {"balance": None, "tier": None, "ledger": [], "notifications": []}


def test_the_members_lifecycle_rfm_loyalty_types_and_segments_are_shown() -> None:
    lines = shown(BASE_VIEW | {"insights": ANNA}).splitlines()
    assert any("lifecycle active (bought 12 days ago)" in s for s in lines)
    assert any("RFM r 5 f 4 m 3" in s for s in lines)
    assert any("12 days ago" in s and "8 purchases" in s and "240.00 spent" in s for s in lines)
    assert any("happy" in s and "buys every 9 days; no complaint" in s for s in lines)
    assert any("convenience" in s and "one store: s-1" in s for s in lines)
    assert any("segments: loyalty:happy, lifecycle:active, tier:gold" in s for s in lines)


def test_a_member_without_purchases_types_or_segments_is_shown_as_such() -> None:
    blank = {"recency_days": None, "frequency": 0, "monetary": "0.00"}
    new = ANNA | {"rfm": blank | {"r": None, "f": None, "m": None}, "lifecycle": "new"}
    text = shown(BASE_VIEW | {"insights": new | {"loyalty_types": [], "segments": []}})
    assert "lifecycle new" in text and "RFM r - f - m -" in text
    assert "last purchase never" in text
    assert "loyalty types: none" in text and "segments: none" in text


def test_a_view_without_insights_says_why_and_shows_the_rest() -> None:
    text = shown(BASE_VIEW | {"insights": None, "insights_note": "insights is unreachable"})
    assert "insights is unreachable" in text and "points does not know" in text
    assert "insights does not know this customer (yet)" in shown(BASE_VIEW)  # an older view


async def test_insights_down_or_not_knowing_the_member_is_a_note_not_a_failure() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(down)) as http:
        reader = InternalClient.from_dev_env(http, env())
        assert await insights_of(reader, "anna") == {
            "insights": None,
            "insights_note": "insights is unreachable (ConnectError)",
        }
    recorder = Recorder({"/v1/customers/anna/insights": (404, {"detail": "unknown"})})
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as http:
        reader = InternalClient.from_dev_env(http, env())
        unknown = await insights_of(reader, "anna")
    assert unknown["insights"] is None and "does not know" in unknown["insights_note"]


async def test_customer_view_reads_every_service_and_survives_insights_being_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "insights":
            raise httpx.ConnectError("refused", request=request)
        if request.url.path.endswith("/balance"):
            return httpx.Response(200, json={"available": 10})
        return httpx.Response(200, json={"items": [], "entries": []})

    client = functools.partial(httpx.AsyncClient, transport=httpx.MockTransport(answer))
    monkeypatch.setattr(httpx, "AsyncClient", client)  # the one customer_view opens
    view = await operations.customer_view(env(), "anna", ledger_tail=5)
    assert view["balance"] == {"available": 10}
    assert view["insights"] is None and "unreachable" in view["insights_note"]
