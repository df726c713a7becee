"""`fedelta import members`: reading CSV and NDJSON as a stream, the rows the file itself
spoils, batches with a bounded number in flight, retries, the summary and the exit status."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from fedelta_cli import imports
from fedelta_cli.imports import ImportFileError, ImportRefused, Row
from fedelta_cli.main import app
from fedelta_client import InternalClient
from fedelta_client.internal import ServiceUrls

URLS = ServiceUrls("http://ingest", "http://points", "http://tiers", "http://notifications")
HEADER = ",".join(imports.COLUMNS)


def csv_rows(text: str) -> list[Row]:
    return list(imports.csv_rows(io.StringIO(text, newline="")))


def ndjson_rows(text: str) -> list[Row]:
    return list(imports.ndjson_rows(io.StringIO(text)))


class TestCsv:
    def test_cells_become_fields_and_empty_ones_are_left_out(self) -> None:
        rows = csv_rows(
            "customer_id,email,consent_email,consent_sms,points,tier\n"
            "c-1,ada@example.com,yes,0,1200,gold\n"
            "c-2,,TRUE,No,,\n"
        )
        assert rows == [
            Row(
                2,
                {
                    "customer_id": "c-1",
                    "email": "ada@example.com",
                    "consent_email": True,
                    "consent_sms": False,
                    "points": 1200,
                    "tier": "gold",
                },
                "c-1",
            ),
            Row(3, {"customer_id": "c-2", "consent_email": True, "consent_sms": False}, "c-2"),
        ]

    def test_what_is_not_understood_goes_as_it_is_for_ingest_to_refuse(self) -> None:
        [row] = csv_rows("customer_id,consent_sms,points\nc-1,maybe,12.5\n")
        assert row.fields == {"customer_id": "c-1", "consent_sms": "maybe", "points": "12.5"}

    def test_a_record_with_the_wrong_number_of_fields_is_a_refused_row(self) -> None:
        rows = csv_rows("customer_id,email\nc-1,a@example.com,extra\nc-2\nc-3,\n")
        assert [(r.line, r.customer_id, r.fields is None) for r in rows] == [
            (2, "c-1", True),
            (3, "c-2", True),
            (4, "c-3", False),
        ]
        assert rows[0].reason == "expected 2 fields as in the header, found 3"

    def test_lines_count_quoted_line_breaks_and_blank_lines_are_skipped(self) -> None:
        rows = csv_rows('\ufeffcustomer_id,locale\n"c-1","en"\n\n"c-\n2",fi\nc-3,sv\n')
        assert [(r.line, r.customer_id) for r in rows] == [(2, "c-1"), (4, "c-\n2"), (6, "c-3")]

    @pytest.mark.parametrize(
        ("text", "says"),
        [
            ("", "empty"),
            ("customer_id,nickname\n", "nickname"),
            ("email\n", "customer_id"),
            ("customer_id,customer_id\n", "twice"),
        ],
    )
    def test_a_header_that_is_not_an_imports_is_refused(self, text: str, says: str) -> None:
        with pytest.raises(ImportFileError, match=says):
            csv_rows(text)


class TestNdjson:
    def test_objects_per_line_and_the_lines_that_are_not(self) -> None:
        rows = ndjson_rows(
            '{"customer_id": "c-1", "points": 5, "line": 99}\n'
            "\n"
            "[1, 2]\n"
            '{"customer_id": \n'
            '{"customer_id": "c-2", "consent_email": true}\n'
        )
        assert [(r.line, r.fields, r.reason is None) for r in rows] == [
            (1, {"customer_id": "c-1", "points": 5}, True),
            (3, None, False),
            (4, None, False),
            (5, {"customer_id": "c-2", "consent_email": True}, True),
        ]
        assert rows[1].reason == "not a JSON object"
        assert rows[2].reason is not None and rows[2].reason.startswith("not valid JSON")


def test_the_format_comes_from_the_extension_or_the_option(tmp_path: Path) -> None:
    assert imports.file_format(tmp_path / "m.csv", None) == "csv"
    assert imports.file_format(tmp_path / "m.ndjson", None) == "ndjson"
    assert imports.file_format(tmp_path / "m.jsonl", None) == "ndjson"
    assert imports.file_format(tmp_path / "m.txt", "csv") == "csv"
    with pytest.raises(ImportFileError, match="--format"):
        imports.file_format(tmp_path / "m.txt", None)


def test_the_estimate_counts_lines_less_the_header(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("customer_id\na\nb\nc")
    assert imports.estimated_rows(path, "csv") == 3
    assert imports.estimated_rows(path, "ndjson") == 4


def results_of(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "line": row["line"],
            "customer_id": row["customer_id"],
            "outcome": "refused" if row["customer_id"].startswith("bad") else "imported",
            "reason": "email: not an email address"
            if row["customer_id"].startswith("bad")
            else None,
        }
        for row in rows
    ]


class TestSending:
    async def test_batches_are_bounded_and_so_are_those_in_flight(self) -> None:
        in_flight = peak = 0
        sizes: list[int] = []

        async def send(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            sizes.append(len(rows))
            await asyncio.sleep(0.01)
            in_flight -= 1
            return results_of(rows)

        rows = (Row(n + 2, {"customer_id": f"c-{n}"}, f"c-{n}") for n in range(1050))
        seen: list[dict[str, Any]] = []
        summary = await imports.import_rows(
            rows, send, batch=100, in_flight=3, on_result=lambda r, _: seen.append(r)
        )
        assert sorted(sizes) == [50] + [100] * 10
        assert peak == 3
        assert (summary.imported, summary.exists, summary.refused, summary.rows) == (
            1050,
            0,
            0,
            1050,
        )
        assert len(seen) == 1050

    async def test_rows_spoilt_by_the_file_are_counted_without_being_sent(self) -> None:
        sent: list[dict[str, Any]] = []

        async def send(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            sent.extend(rows)
            return results_of(rows)

        rows = [
            Row(2, {"customer_id": "c-1"}, "c-1"),
            Row(3, None, "c-2", "expected 2 fields as in the header, found 3"),
            Row(4, {"customer_id": "bad-1"}, "bad-1"),
        ]
        refused: list[Any] = []
        summary = await imports.import_rows(
            rows, send, batch=500, in_flight=2, on_result=lambda _, r: refused.append(r)
        )
        assert sent == [{"line": 2, "customer_id": "c-1"}, {"line": 4, "customer_id": "bad-1"}]
        assert (summary.imported, summary.refused) == (1, 2)
        assert [r.line for r in summary.shown_refusals] == [3, 4]
        assert len([r for r in refused if r is not None]) == 2

    async def test_a_failure_stops_the_import_as_itself(self) -> None:
        async def send(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            raise ImportRefused("HTTP 422: no active partner 'x'")

        rows = (Row(n, {"customer_id": f"c-{n}"}) for n in range(2, 2000))
        with pytest.raises(ImportRefused):
            await imports.import_rows(rows, send, batch=10, in_flight=2, on_result=lambda *_: None)

    def test_the_summary_keeps_the_first_50_refusals_by_line(self) -> None:
        summary = imports.Summary()
        for line in range(500, 1, -1):
            summary.count({"line": line, "customer_id": "c", "outcome": "refused", "reason": "r"})
        assert [r.line for r in summary.shown_refusals] == list(range(2, 52))
        assert summary.refused == 499


def admin(handler: Callable[[httpx.Request], httpx.Response]) -> InternalClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return InternalClient(http, urls=URLS, token="admin-token")


async def test_the_client_posts_the_rows_with_the_admin_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, json={"results": results_of(json.loads(request.content)["rows"])}
        )

    results = await admin(handler).import_members("p-1", [{"line": 2, "customer_id": "c-1"}])
    assert results[0]["outcome"] == "imported"
    [request] = seen
    assert str(request.url) == "http://ingest/v1/admin/imports/members"
    assert request.headers["authorization"] == "Bearer admin-token"
    assert json.loads(request.content) == {
        "partner_id": "p-1",
        "welcome": False,
        "rows": [{"line": 2, "customer_id": "c-1"}],
    }


async def test_a_call_without_an_answer_is_sent_again_and_a_refusal_is_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(imports, "FIRST_PAUSE_S", 0.0)
    answers = [httpx.Response(503), httpx.Response(200, json={"results": []})]
    calls = 0

    def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise httpx.ConnectError("refused")
        return answers.pop(0)

    send = imports.sender(admin(flaky), "p-1", welcome=True)
    assert await send([{"line": 2, "customer_id": "c-1"}]) == []
    assert calls == 3

    refusing = imports.sender(
        admin(lambda _: httpx.Response(422, json={"detail": "no active partner"})),
        "x",
        welcome=False,
    )
    with pytest.raises(ImportRefused, match="no active partner"):
        await refusing([{"line": 2, "customer_id": "c-1"}])


# --- the command ------------------------------------------------------------------------------


@pytest.fixture
def dev_env(tmp_path: Path) -> dict[str, str]:
    env_file = tmp_path / "dev.env"
    env_file.write_text(
        "\n".join(
            [
                "FEDELTA_INGEST_URL=http://ingest",
                "FEDELTA_POINTS_URL=http://points",
                "FEDELTA_TIERS_URL=http://tiers",
                "FEDELTA_NOTIFICATIONS_URL=http://notifications",
                "FEDELTA_ENGAGEMENT_URL=http://engagement",
                "FEDELTA_INSIGHTS_URL=http://insights",
                "FEDELTA_WEB_URL=http://web",
                "FEDELTA_PARTNER_KEY=k",
                "FEDELTA_PARTNER_SECRET=s",
                *(
                    f"FEDELTA_{service}_{role}_TOKEN={role[0].lower()}"
                    for service in (
                        "INGEST",
                        "POINTS",
                        "TIERS",
                        "NOTIFICATIONS",
                        "ENGAGEMENT",
                        "INSIGHTS",
                        "WEB",
                    )
                    for role in ("READ", "OPERATE", "ADMIN")
                ),
                "FEDELTA_PARTNER_ID=shop",
            ]
        )
    )
    return {"FEDELTA_DEV_ENV": str(env_file), "COLUMNS": "200"}


@pytest.fixture
def ingest(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every body the command sends; ingest answers `refused` for ids starting with `bad`."""
    bodies: list[dict[str, Any]] = []
    real = httpx.AsyncClient

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        return httpx.Response(200, json={"results": results_of(body["rows"])})

    def client(**options: Any) -> httpx.AsyncClient:
        return real(transport=httpx.MockTransport(handler), **options)

    monkeypatch.setattr(httpx, "AsyncClient", client)
    return bodies


def test_the_command_imports_a_file_and_exits_0(
    tmp_path: Path, dev_env: dict[str, str], ingest: list[dict[str, Any]]
) -> None:
    path = tmp_path / "members.csv"
    path.write_text("customer_id,points\n" + "".join(f"c-{n},{n}\n" for n in range(1, 8)))
    result = CliRunner().invoke(
        app, ["import", "members", str(path), "--batch", "3", "--welcome"], env=dev_env
    )
    assert result.exit_code == 0, result.output
    assert "7 imported" in result.output and "none refused" in result.output
    assert [len(body["rows"]) for body in ingest] == [3, 3, 1]
    assert {(body["partner_id"], body["welcome"]) for body in ingest} == {("shop", True)}


def test_refused_rows_are_listed_reported_and_exit_1(
    tmp_path: Path, dev_env: dict[str, str], ingest: list[dict[str, Any]]
) -> None:
    path = tmp_path / "members.ndjson"
    path.write_text('{"customer_id": "c-1"}\n{"customer_id": "bad-1"}\nnot json\n')
    report = tmp_path / "refused.csv"
    result = CliRunner().invoke(
        app,
        ["import", "members", str(path), "--partner", "cafe", "--report", str(report)],
        env=dev_env,
    )
    assert result.exit_code == 1, result.output
    assert "2 refused" in result.output
    assert "email: not an email address" in result.output
    assert ingest[0]["partner_id"] == "cafe"
    lines = report.read_text().splitlines()
    assert lines[0] == "line,customer_id,reason"
    assert sorted(lines[1:]) == sorted(
        ["2,bad-1,email: not an email address", "3,,not valid JSON (Expecting value at column 1)"]
    )


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("absent.csv", None, "absent.csv"),
        ("members.xlsx", b"PK", "--format"),
        ("members.csv", b"customer_id,colour\n", "colour"),
        ("members.csv", b"customer_id\n\xff\xfe\n", "UTF-8"),
    ],
)
def test_a_file_that_cannot_be_read_exits_2_without_a_traceback(
    tmp_path: Path,
    dev_env: dict[str, str],
    ingest: list[dict[str, Any]],
    name: str,
    content: bytes | None,
    says: str,
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    result = CliRunner().invoke(app, ["import", "members", str(path)], env=dev_env)
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
