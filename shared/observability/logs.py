"""One log format for every service. Logs carry ids, never message bodies or personal data.

Exception texts are where personal data slips in unnoticed: a database error quotes the
statement's values, a validation error the input, a Kafka error the record. So an exception
is logged as where it happened (the traceback's frames: files, lines, source code) and what it
is (its class), never its message, whoever logs it: our code, uvicorn or a library.

Each line is one JSON object (`FEDELTA_LOG_FORMAT=text` gives plain lines for a terminal): time,
level, service, logger, message, the W3C trace id of the HTTP call being served (to find the
call's spans), and the exception by class and frames.
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from datetime import UTC, datetime
from types import TracebackType

from shared.observability.context import CURRENT_TRACEPARENT

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]

# Their own handlers would format exceptions with their messages: they go through ours.
_ROUTED_TO_ROOT = ("uvicorn", "uvicorn.error", "uvicorn.asgi")


class WithoutExceptionMessages(logging.Formatter):
    """Formats tracebacks and exceptions passed as arguments by class only."""

    def formatException(self, ei: ExcInfo) -> str:
        _, error, _ = ei
        if error is None:
            return ""
        return "\n".join(_chain_without_messages(error))

    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.args, tuple) and any(
            isinstance(arg, BaseException) for arg in record.args
        ):
            record.args = tuple(
                _class_name(arg) if isinstance(arg, BaseException) else arg for arg in record.args
            )
        return super().format(record)


def _class_name(error: BaseException) -> str:
    kind = type(error)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def _chain_without_messages(error: BaseException) -> list[str]:
    """The chain of causes, oldest first, as Python prints it, each without its message."""
    chain: list[tuple[BaseException, str | None]] = []
    seen: set[int] = set()
    current: BaseException | None = error
    link: str | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, "direct cause"
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, "context"
        else:
            current = None
    lines: list[str] = []
    for position, (exc, _) in enumerate(reversed(chain)):
        if position:
            caused = chain[len(chain) - position][1]
            lines.append(
                "\nThe above exception was the direct cause of the following exception:\n"
                if caused == "direct cause"
                else "\nDuring handling of the above exception, another exception occurred:\n"
            )
        lines.append("Traceback (most recent call last):")
        lines.extend(line.rstrip("\n") for line in traceback.format_tb(exc.__traceback__))
        lines.append(f"{_class_name(exc)} (message withheld: it may carry personal data)")
    return lines


class JsonLines(WithoutExceptionMessages):
    """One JSON object per record, exceptions by class and frames only."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        super().format(record)  # sets record.message, with exceptions as their class names
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.message,
        }
        traceparent = CURRENT_TRACEPARENT.get()
        if traceparent is not None:
            line["trace_id"] = traceparent[3:35]
        if record.exc_info and record.exc_info[1] is not None:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(service: str, level: str) -> None:
    handler = logging.StreamHandler()
    if os.environ.get("FEDELTA_LOG_FORMAT", "json") == "text":
        handler.setFormatter(
            WithoutExceptionMessages(f"%(asctime)s %(levelname)s [{service}] %(name)s: %(message)s")
        )
    else:
        handler.setFormatter(JsonLines(service))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for name in _ROUTED_TO_ROOT:
        routed = logging.getLogger(name)
        routed.handlers.clear()
        routed.propagate = True
    # httpx logs every request's URL with its query at INFO: the web's lookup of a member by
    # email would put the address in its log (logs carry ids, never personal data).
    for noisy in ("aiokafka", "kafka", "sqlalchemy.engine", "uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
