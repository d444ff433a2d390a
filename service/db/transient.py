"""Database errors that mean "away or busy for now".

A PostgreSQL server that restarts or cannot be reached, a dropped connection, a pool with no
free connection and a SQLite file whose write lock stays taken are not bugs: the same request
succeeds a little later. The API answers them with 503 and Retry-After; everything else a
database raises is a bug and stays a 500 with its traceback in the log.

SQLite retries a locked file itself: each statement waits for the lock, trying again, for
up to ``NNQ_SQLITE_BUSY_TIMEOUT_MS`` (``service.db.engine``) before it reports it locked. nnq
starts a transaction only at its first write (pysqlite's default), so no read snapshot ever
has to be upgraded, the one case in which SQLite gives up at once.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import exc as sa

# SQLite's words when another connection held the write lock past the busy timeout.
SQLITE_LOCKED = ("database is locked", "database table is locked", "database is busy")
SQLITE_AWAY = ("unable to open database file", "disk i/o error")


def _sqlite_message(error: BaseException) -> str | None:
    orig = getattr(error, "orig", None)
    return str(orig).lower() if isinstance(orig, sqlite3.Error) else None


def is_unavailable(error: BaseException) -> bool:
    """Whether a database error is transient: the server is away, restarting or overloaded,
    the connection dropped, the pool is exhausted, or SQLite stayed locked."""
    if isinstance(error, (sa.TimeoutError, sa.DisconnectionError)):
        return True
    if not isinstance(error, sa.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    message = _sqlite_message(error)
    if message is not None:
        return any(text in message for text in SQLITE_LOCKED + SQLITE_AWAY)
    # psycopg raises OperationalError for refused or lost connections, a server shutting down
    # or starting up, too many clients, and serialization failures; InterfaceError for a
    # connection that is already closed. Bugs (bad SQL, constraints) have other classes.
    return isinstance(error, (sa.OperationalError, sa.InterfaceError))
