"""Engines and sessions for the configured database URL (``settings().database_url``).

SQLite is written by the API and the workers at once, so every connection gets
WAL mode, a 30 s busy timeout and foreign keys; PostgreSQL goes through psycopg 3.
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

SQLITE_BUSY_TIMEOUT_MS = 30_000


def database_url() -> str:
    """The configured database URL, normalised for the drivers nnq installs."""
    return settings().database_url


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str | None = None) -> Engine:
    """A new engine; for a SQLite file, its directory is created first."""
    url = normalize_url(url or database_url())
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


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
