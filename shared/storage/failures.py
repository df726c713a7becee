"""Whose fault is a failure: the message's, or the database's for being away?

A message that fails on a healthy database is retried a bounded number of times and then
dead-lettered. A database that is unreachable, full of connections, shutting down, starting
up, read-only after a failover, or a pool with no connection to give is never the message's
fault: the consumer waits and tries again, however long that takes, and nothing is
dead-lettered for it. The asyncpg dialect raises the generic `DBAPIError` for most of these,
so the decision is taken on the SQLSTATE and the connection's state, not the exception class.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import exc as sa_exc

# SQLSTATE classes (the first two characters) that say the server, not the statement, failed.
OUTAGE_CLASSES = frozenset(
    {
        "08",  # connection exception
        "53",  # insufficient resources: too many connections, disk full, out of memory
        "57",  # operator intervention: shutting down, starting up, connection terminated
        "58",  # system error: I/O error
    }
)
OUTAGE_STATES = frozenset(
    {
        "25006",  # read_only_sql_transaction: a replica promoted, or a primary demoted
        "40001",  # serialization_failure: a concurrent transaction won; the retry will pass
        "40P01",  # deadlock_detected: likewise
        "55P03",  # lock_not_available
    }
)
# Not an outage although in class 57: a statement cancelled by its timeout may be the
# statement's own doing, so it counts as an attempt.
MESSAGE_STATES = frozenset({"57014"})


def sqlstate_of(error: BaseException) -> str | None:
    for cause in _chain(error):
        state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        if isinstance(state, str) and len(state) == 5:
            return state
    return None


def is_outage(error: BaseException) -> bool:
    """True when the failure says the database (or the way to it) is away or overloaded,
    so the same work should simply be tried again later."""
    state = sqlstate_of(error)
    if state is not None:
        if state in MESSAGE_STATES:
            return False
        return state[:2] in OUTAGE_CLASSES or state in OUTAGE_STATES
    for cause in _chain(error):
        if isinstance(cause, sa_exc.DBAPIError) and cause.connection_invalidated:
            return True
        # The pool had no connection to give in time (not the builtin TimeoutError).
        if isinstance(cause, sa_exc.TimeoutError | sa_exc.DisconnectionError):
            return True
        if isinstance(cause, OSError | TimeoutError):  # refused, reset, unreachable, timed out
            return True
        if type(cause).__name__ in {"ConnectionDoesNotExistError", "ConnectionFailureError"}:
            return True
    return False


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, what SQLAlchemy wrapped (`orig`), and what it was raised from."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        pending.extend(
            [
                current.__context__,
                current.__cause__,
                orig if isinstance(orig, BaseException) else None,
            ]
        )
