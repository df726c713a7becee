"""Whose fault: the database's (wait) or the message's (retry, then dead-letter)."""

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

from shared.storage.failures import is_outage, sqlstate_of


def wrapped(orig: Exception, cls: type[sa_exc.DBAPIError] = sa_exc.DBAPIError) -> Exception:
    return cls("statement", None, AsyncAdapt_asyncpg_dbapi.Error(str(orig), orig))  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    ("driver_error", "state"),
    [
        (asyncpg.exceptions.TooManyConnectionsError("too many"), "53300"),
        (asyncpg.exceptions.AdminShutdownError("terminating"), "57P01"),
        (asyncpg.exceptions.CrashShutdownError("crash"), "57P02"),
        (asyncpg.exceptions.CannotConnectNowError("starting up"), "57P03"),
        (asyncpg.exceptions.ReadOnlySQLTransactionError("read-only"), "25006"),
        (asyncpg.exceptions.SerializationError("could not serialize"), "40001"),
        (asyncpg.exceptions.DeadlockDetectedError("deadlock"), "40P01"),
        (asyncpg.exceptions.DiskFullError("disk full"), "53100"),
    ],
)
def test_server_side_outages_are_recognised_by_sqlstate(
    driver_error: Exception, state: str
) -> None:
    error = wrapped(driver_error)
    assert sqlstate_of(error) == state
    assert is_outage(error)


@pytest.mark.parametrize(
    "driver_error",
    [
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        asyncpg.exceptions.NumericValueOutOfRangeError("integer out of range"),
        asyncpg.exceptions.UntranslatableCharacterError("\\u0000 cannot be converted"),
        asyncpg.exceptions.DatetimeFieldOverflowError("date out of range"),
        asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"),
        asyncpg.exceptions.UndefinedColumnError("column does not exist"),
    ],
)
def test_a_statement_that_fails_on_a_healthy_database_is_the_message_s_fault(
    driver_error: Exception,
) -> None:
    assert not is_outage(wrapped(driver_error))


def test_a_connection_invalidated_mid_statement_is_an_outage() -> None:
    error = wrapped(asyncpg.exceptions.ConnectionDoesNotExistError("closed in the middle"))
    assert is_outage(error)
    plain = sa_exc.DBAPIError("statement", None, Exception("gone"))
    plain.connection_invalidated = True
    assert is_outage(plain)


def test_the_pool_timing_out_is_an_outage_though_not_the_builtin_timeout() -> None:
    assert not issubclass(sa_exc.TimeoutError, TimeoutError)
    assert is_outage(sa_exc.TimeoutError("QueuePool limit reached"))


def test_network_failures_are_outages_even_when_raised_from_deeper() -> None:
    try:
        try:
            raise ConnectionResetError(104, "reset by peer")
        except ConnectionResetError as reset:
            raise RuntimeError("while talking to the database") from reset
    except RuntimeError as error:
        assert is_outage(error)


def test_plain_programming_errors_are_not_outages() -> None:
    assert not is_outage(ValueError("purchase in USD, program in EUR"))
    assert not is_outage(KeyError("missing"))
