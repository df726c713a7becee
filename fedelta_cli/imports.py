"""`fedelta import members FILE`: a program's members brought over (product §11,
docs/import.md).

The file (CSV with a header row, or NDJSON) is streamed: rows are read as batches are sent,
at most `in_flight` batches of at most 500 rows in the air, so memory holds a few batches
whatever the file's size. Ingest checks every row (`POST /v1/admin/imports/members`); a row
the file itself spoils (a CSV record with the wrong number of fields, a line that is not a
JSON object) is refused here, with its line, and the others still go. The same file again
imports nothing: every member is then `exists`."""

from __future__ import annotations

import asyncio
import csv
import heapq
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, TextIO

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from fedelta_client import DevEnv, FedeltaError, InternalClient, Refused

COLUMNS = (
    "customer_id",
    "email",
    "phone",
    "locale",
    "time_zone",
    "consent_email",
    "consent_sms",
    "birthday",
    "points",
    "points_expire_at",
    "tier",
    "tier_since",
)
MAX_BATCH = 500
# The refused rows printed at the end (every one goes to --report).
SHOWN_REFUSALS = 50
# How often a batch that got no definite answer is sent again (safe: a member already in is
# then `exists`), and the first pause between tries.
ATTEMPTS = 5
FIRST_PAUSE_S = 0.5
# An id echoed from a refused row: no more than this.
_ECHOED_ID_LENGTH = 128

Format = Literal["csv", "ndjson"]
_TRUE = frozenset({"true", "1", "yes", "y"})
_FALSE = frozenset({"false", "0", "no", "n"})
_DIGITS = re.compile(r"[0-9]{1,12}")


class ImportFileError(Exception):
    """The file cannot be read (missing, not UTF-8 text, a header that is not an import's):
    the message is for the operator."""


class ImportRefused(Exception):
    """Ingest refused a whole call (an unknown partner, a wrong token): nothing more is sent."""


@dataclass(frozen=True)
class Row:
    """A row read from the file: its fields to send, or why it cannot be sent."""

    line: int
    fields: dict[str, Any] | None
    customer_id: str | None = None
    reason: str | None = None


def file_format(path: Path, given: str | None) -> Format:
    chosen = (given or path.suffix.lstrip(".")).lower()
    if chosen in ("csv", "ndjson", "jsonl"):
        return "csv" if chosen == "csv" else "ndjson"
    raise ImportFileError(
        f"{path.name}: cannot tell the format from the extension: name it .csv or .ndjson, "
        "or pass --format csv|ndjson"
    )


def estimated_rows(path: Path, fmt: Format) -> int:
    """The number of lines, less the header: the progress bar's total (a CSV field may span
    lines, so the count may be a little high). One pass in 1 MiB chunks."""
    lines = 0
    last = b"\n"
    with _opened_binary(path) as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    lines += last != b"\n"
    return max(lines - (fmt == "csv"), 0)


def _opened_binary(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as error:
        raise ImportFileError(f"{path}: {error.strerror or type(error).__name__}") from None


def read_rows(handle: TextIO, fmt: Format) -> Iterator[Row]:
    return csv_rows(handle) if fmt == "csv" else ndjson_rows(handle)


def csv_rows(handle: TextIO) -> Iterator[Row]:
    """The rows of a CSV file with a header row of import columns (any order, `customer_id`
    among them); empty cells are left out, `consent_*` read as true/false/1/0/yes/no and
    `points` as a whole number."""
    records = csv.reader(handle)
    header = _header(next(records, None))
    while True:
        line = records.line_num + 1
        try:
            record = next(records)
        except StopIteration:
            return
        except csv.Error as error:
            yield Row(line, None, reason=f"not a CSV record: {error}")
            continue
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            yield Row(
                line,
                None,
                _echoed(dict(zip(header, record, strict=False)).get("customer_id")),
                f"expected {len(header)} fields as in the header, found {len(record)}",
            )
            continue
        fields = csv_fields(zip(header, record, strict=True))
        yield Row(line, fields, _echoed(fields.get("customer_id")))


def _header(record: list[str] | None) -> list[str]:
    if record is None:
        raise ImportFileError("the file is empty: a CSV import starts with a header row")
    header = [name.strip().lstrip("\ufeff") for name in record]
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise ImportFileError(
            f"unknown column(s) in the header: {', '.join(unknown)}; the columns are "
            f"{', '.join(COLUMNS)}"
        )
    if len(set(header)) != len(header):
        raise ImportFileError("a column appears twice in the header")
    if "customer_id" not in header:
        raise ImportFileError("the header has no customer_id column (the one required)")
    return header


def csv_fields(cells: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """A CSV record's cells as an import row's fields: what the API takes as JSON."""
    fields: dict[str, Any] = {}
    for name, raw in cells:
        value = raw.strip()
        if not value:
            continue
        if name in ("consent_email", "consent_sms"):
            fields[name] = _flag(value)
        elif name == "points" and _DIGITS.fullmatch(value):
            fields[name] = int(value)
        else:
            fields[name] = value  # anything wrong is refused by ingest, naming the field
    return fields


def _flag(value: str) -> bool | str:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return value


def ndjson_rows(handle: TextIO) -> Iterator[Row]:
    """One JSON object per line, with the import's columns as keys; blank lines skipped."""
    for line, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            yield Row(line, None, reason=f"not valid JSON ({error.msg} at column {error.colno})")
            continue
        if not isinstance(value, dict):
            yield Row(line, None, reason="not a JSON object")
            continue
        value.pop("line", None)  # the line is the file's
        yield Row(line, value, _echoed(value.get("customer_id")))


def _echoed(value: Any) -> str | None:
    return value[:_ECHOED_ID_LENGTH] if isinstance(value, str) else None


def batches(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- the summary ----------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class RefusedRow:
    line: int
    customer_id: str
    reason: str


@dataclass
class Summary:
    imported: int = 0
    exists: int = 0
    refused: int = 0
    seconds: float = 0.0
    # The refused rows with the lowest lines, at most SHOWN_REFUSALS (a max-heap by line).
    _shown: list[tuple[int, RefusedRow]] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.imported + self.exists + self.refused

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def shown_refusals(self) -> list[RefusedRow]:
        return sorted(row for _, row in self._shown)

    def count(self, result: dict[str, Any]) -> RefusedRow | None:
        outcome = result["outcome"]
        if outcome == "imported":
            self.imported += 1
            return None
        if outcome == "exists":
            self.exists += 1
            return None
        self.refused += 1
        refused = RefusedRow(
            int(result["line"]), str(result.get("customer_id") or ""), str(result.get("reason"))
        )
        entry = (-refused.line, refused)
        if len(self._shown) < SHOWN_REFUSALS:
            heapq.heappush(self._shown, entry)
        elif refused.line < -self._shown[0][0]:
            heapq.heapreplace(self._shown, entry)
        return refused


# --- sending --------------------------------------------------------------------------------

SendBatch = Callable[[list[dict[str, Any]]], Awaitable[list[dict[str, Any]]]]


def sender(admin: InternalClient, partner_id: str, *, welcome: bool) -> SendBatch:
    """One call per batch, sent again after a pause when no definite answer came (a member
    already in is then `exists`); a refusal of the whole call is ImportRefused."""

    async def send(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        pause = FIRST_PAUSE_S
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await admin.import_members(partner_id, rows, welcome=welcome)
            except Refused as refused:
                raise ImportRefused(str(refused)) from None
            except FedeltaError:
                if attempt == ATTEMPTS:
                    raise
            except httpx.TransportError:
                if attempt == ATTEMPTS:
                    raise
            await asyncio.sleep(pause)
            pause *= 2
        raise AssertionError("unreachable")

    return send


OnResult = Callable[[dict[str, Any], RefusedRow | None], None]


async def import_rows(
    rows: Iterable[Row], send: SendBatch, *, batch: int, in_flight: int, on_result: OnResult
) -> Summary:
    """Sends the rows in batches, at most `in_flight` at once, and counts every outcome; a
    row refused by the file itself is counted without being sent."""
    summary = Summary()
    started = time.perf_counter()
    slots = asyncio.Semaphore(in_flight)

    def record(result: dict[str, Any]) -> None:
        on_result(result, summary.count(result))

    async def send_batch(chunk: list[Row]) -> None:
        try:
            sendable = [{"line": row.line, **row.fields} for row in chunk if row.fields is not None]
            for result in await send(sendable) if sendable else []:
                record(result)
        finally:
            slots.release()

    try:
        async with asyncio.TaskGroup() as group:
            for chunk in batches(rows, batch):
                for row in chunk:
                    if row.fields is None:
                        record(_local_refusal(row))
                await slots.acquire()
                group.create_task(send_batch(chunk))
    except BaseExceptionGroup as failed:
        # The first failure as itself (ImportFileError, ImportRefused, …), not a group.
        raise _first(failed) from None
    summary.seconds = time.perf_counter() - started
    return summary


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    for error in group.exceptions:
        found = _first(error) if isinstance(error, BaseExceptionGroup) else error
        if not isinstance(found, asyncio.CancelledError):
            return found
    return group.exceptions[0]


def _local_refusal(row: Row) -> dict[str, Any]:
    return {
        "line": row.line,
        "customer_id": row.customer_id,
        "outcome": "refused",
        "reason": row.reason,
    }


# --- the command ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportOptions:
    partner_id: str
    welcome: bool = False
    fmt: str | None = None
    batch: int = MAX_BATCH
    in_flight: int = 4
    report: Path | None = None


async def import_file(env: DevEnv, path: Path, options: ImportOptions, console: Console) -> Summary:
    """The whole command: the file streamed to ingest with a progress bar, every refused row
    written to the report (when asked) as it comes. ImportFileError when the file cannot be
    read, ImportRefused when ingest refuses the calls themselves."""
    fmt = file_format(path, options.fmt)
    total = estimated_rows(path, fmt)
    report = _open_report(options.report)
    try:
        async with httpx.AsyncClient(
            timeout=60, limits=httpx.Limits(max_connections=options.in_flight)
        ) as http:
            admin = InternalClient.from_dev_env(http, env, admin=True)
            send = sender(admin, options.partner_id, welcome=options.welcome)
            with _progress(console) as progress, _text(path) as handle:
                task = progress.add_task("importing", total=total or None, rate="")
                started = time.perf_counter()

                def on_result(result: dict[str, Any], refused: RefusedRow | None) -> None:
                    if refused is not None and report is not None:
                        report.writerow([refused.line, refused.customer_id, refused.reason])
                    progress.advance(task)
                    done = progress.tasks[0].completed
                    rate = done / max(time.perf_counter() - started, 1e-9)
                    progress.update(task, rate=f"{rate:,.0f} rows/s")

                return await import_rows(
                    _decoded(read_rows(handle, fmt), path),
                    send,
                    batch=options.batch,
                    in_flight=options.in_flight,
                    on_result=on_result,
                )
    finally:
        if report is not None:
            report.close()


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
    )


def _text(path: Path) -> TextIO:
    try:
        # newline="": the csv module reads line ends inside quoted fields itself.
        return path.open(encoding="utf-8-sig", newline="")
    except OSError as error:
        raise ImportFileError(f"{path}: {error.strerror or type(error).__name__}") from None


def _decoded(rows: Iterator[Row], path: Path) -> Iterator[Row]:
    """The rows, with a decoding error mid-file made an ImportFileError."""
    try:
        yield from rows
    except UnicodeDecodeError as error:
        raise ImportFileError(
            f"{path.name} is not UTF-8 text (an undecodable byte at offset {error.start} of "
            "a block read): save it as UTF-8 and import it again (what went in is kept)"
        ) from None


class _Report:
    def __init__(self, handle: TextIO) -> None:
        self._handle = handle
        self._writer = csv.writer(handle)
        self._writer.writerow(["line", "customer_id", "reason"])

    def writerow(self, row: list[object]) -> None:
        self._writer.writerow(row)

    def close(self) -> None:
        self._handle.close()


def _open_report(path: Path | None) -> _Report | None:
    if path is None:
        return None
    try:
        return _Report(path.open("w", encoding="utf-8", newline=""))
    except OSError as error:
        raise ImportFileError(
            f"cannot write the report {path}: {error.strerror or type(error).__name__}"
        ) from None


def render_summary(summary: Summary, console: Console, report: Path | None) -> None:
    console.print(
        f"{summary.rows:,} rows in {summary.seconds:.1f} s ({summary.rate:,.0f} rows/s): "
        f"[green]{summary.imported:,} imported[/], {summary.exists:,} already members "
        f"(left as they are), "
        + (f"[red]{summary.refused:,} refused[/]" if summary.refused else "none refused")
    )
    shown = summary.shown_refusals
    if not shown:
        return
    table = Table("line", "customer_id", "reason", title="refused rows")
    for row in shown:
        table.add_row(str(row.line), row.customer_id, row.reason)
    console.print(table)
    if summary.refused > len(shown):
        where = f"all of them are in {report}" if report else "--report FILE writes all of them"
        console.print(f"the first {len(shown)} of {summary.refused:,} refused rows; {where}")
