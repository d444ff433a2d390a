"""Engines and sessions for the configured database URL (``settings().database_url``).

SQLite is written by the API and the workers at once, so every connection gets WAL mode, a
busy timeout (``NNQ_SQLITE_BUSY_TIMEOUT_MS``) and foreign keys; PostgreSQL goes through
psycopg 3 with a connect timeout, and every pooled connection is pinged before use, so a
server that restarted costs no request (``service.db.transient`` says which errors are
"away for now").
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from service.db.scope import transactional
from service.settings import normalize_url, settings

# A server that does not answer (host down, packets dropped) fails a request after this long
# instead of holding it until the operating system gives up.
POSTGRES_CONNECT_TIMEOUT_S = 5


def _postgres_options() -> str:
    """Server-side settings for each PostgreSQL session.

    A client that goes silent inside a transaction (a worker host cut off mid-write) keeps
    that transaction's row locks, the job's row among them, until the server notices, and
    over TCP that can take hours: meanwhile every reconciler that tries to requeue the job
    waits on the lock, and so does the rest of its round. The server ends a session idle
    inside a transaction for a lease (after which its worker has lost the job anyway), rolls
    the transaction back and frees the row (tests/chaos/test_hosts.py).
    """
    idle_ms = max(1, round(settings().lease_seconds * 1000))
    return f"-c idle_in_transaction_session_timeout={idle_ms}"


def database_url() -> str:
    """The configured database URL, normalised for the drivers nnq installs."""
    return settings().database_url


def _sqlite_pragmas(busy_timeout_ms: int):
    def on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return on_connect


def make_engine(url: str | None = None) -> Engine:
    """A new engine; for a SQLite file, its directory is created first."""
    url = normalize_url(url or database_url())
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        busy_timeout_ms = settings().sqlite_busy_timeout_ms
        engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})
        event.listen(engine, "connect", _sqlite_pragmas(busy_timeout_ms))
        return engine
    return create_engine(url, pool_pre_ping=True,
                         connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S,
                                       "options": _postgres_options()})


_engines: dict[str, Engine] = {}
_factories: dict[str, sessionmaker[Session]] = {}
_lock = threading.Lock()


def engine_for(url: str | None = None) -> Engine:
    """The process-wide engine for ``url`` (one pool per URL)."""
    url = normalize_url(url or database_url())
    with _lock:
        if url not in _engines:
            _engines[url] = make_engine(url)
        return _engines[url]


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    """A cached ``sessionmaker`` per URL; objects stay readable after commit."""
    url = normalize_url(url or database_url())
    engine = engine_for(url)
    with _lock:
        if url not in _factories:
            _factories[url] = sessionmaker(bind=engine, expire_on_commit=False)
        return _factories[url]


@transactional
def ping(session: Session) -> None:
    """A round trip to the database; raises SQLAlchemyError when it does not answer."""
    session.execute(text("SELECT 1"))


def _forget_inherited_connections() -> None:
    """In a forked child (Celery prefork, gunicorn) never reuse the parent's sockets."""
    global _lock
    _lock = threading.Lock()
    for engine in _engines.values():
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_inherited_connections)
