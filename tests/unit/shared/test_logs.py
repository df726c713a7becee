"""Exceptions are logged by class and place, never by their message (which quotes values)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from shared.observability.logs import WithoutExceptionMessages, configure_logging

SECRET = "alice@example.com"


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(WithoutExceptionMessages("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("test_logs")
    logger.addHandler(handler)
    logger.propagate = False
    yield stream
    logger.removeHandler(handler)


def fail_with_a_cause() -> None:
    try:
        raise KeyError(SECRET)
    except KeyError as error:
        raise ValueError(f"could not store {SECRET}") from error


def test_a_logged_traceback_keeps_its_frames_and_classes_but_no_message(
    output: io.StringIO,
) -> None:
    try:
        fail_with_a_cause()
    except ValueError:
        logging.getLogger("test_logs").exception("storing failed")
    text = output.getvalue()
    assert SECRET not in text
    assert "storing failed" in text
    assert "ValueError" in text and "KeyError" in text
    assert "direct cause" in text
    assert "fail_with_a_cause" in text  # where it happened is still there


def test_an_exception_passed_as_an_argument_is_logged_by_class(output: io.StringIO) -> None:
    logging.getLogger("test_logs").warning("failed: %s", ValueError(SECRET))
    assert output.getvalue().strip() == "WARNING test_logs: failed: ValueError"


def test_uvicorns_error_log_goes_through_the_same_format() -> None:
    uvicorn_error = logging.getLogger("uvicorn.error")
    uvicorn_error.addHandler(logging.StreamHandler())
    configure_logging("test", "INFO")
    assert uvicorn_error.handlers == [] and uvicorn_error.propagate
    assert all(
        isinstance(handler.formatter, WithoutExceptionMessages)
        for handler in logging.getLogger().handlers
    )
