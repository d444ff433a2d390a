"""Shared fixtures: a fresh migrated database (SQLite and PostgreSQL), an isolated Redis
DB, and real Celery worker processes bound to both (docs/contracts.md, "Tests")."""

from __future__ import annotations

import os

import pytest

from nnq.processes import redis_reachable, stop_process
from tests import support

REQUIRE_POSTGRES_ENV = "NNQ_REQUIRE_POSTGRES"
DEFAULT_TEST_LEASE_S = 5


@pytest.fixture(scope="session")
def _postgres_unreachable() -> str | None:
    return support.postgres_unreachable_reason()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path, _postgres_unreachable):
    """A fresh database migrated to head with Alembic; dropped afterwards."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'nnq.db'}"
        support.migrate(url)
        yield url
        _dispose(url)
        return
    if _postgres_unreachable:
        if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
            pytest.fail(f"{REQUIRE_POSTGRES_ENV}=1 but {_postgres_unreachable}")
        pytest.skip(_postgres_unreachable)
    url = support.create_postgres_database()
    try:
        support.migrate(url)
        yield url
    finally:
        _dispose(url)
        support.drop_postgres_database(url)


def _dispose(url: str) -> None:
    from service.db import engine_for

    engine_for(url).dispose()


@pytest.fixture
def sessions(database_url):
    """The cached sessionmaker for the test's database."""
    from service.db import session_factory

    return session_factory(database_url)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """Base URL of a Redis server: the reachable one, or a private child redis-server."""
    url = os.environ.get(support.REDIS_URL_ENV) or support.DEFAULT_REDIS_URL
    if redis_reachable(url):
        yield url
        return
    proc, url = support.start_private_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield url
    finally:
        stop_process(proc)


@pytest.fixture
def redis_url(redis_server):
    """An empty Redis DB index of its own, flushed at the end (runs may share a server)."""
    url = support.claim_redis_db(redis_server)
    yield url
    support.flush_redis_db(url)


@pytest.fixture
def worker(database_url, redis_url, tmp_path):
    """Factory: ``worker(lease_seconds=..., env={...})`` starts a ready worker process.

    Every worker started is stopped (SIGTERM, then SIGKILL) at teardown.
    """
    started: list[support.WorkerProcess] = []

    def start(*, lease_seconds: float = DEFAULT_TEST_LEASE_S, env: dict | None = None,
              queues: str = "cpu", wait: bool = True) -> support.WorkerProcess:
        proc = support.WorkerProcess(
            {"NNQ_DATABASE_URL": database_url, "NNQ_BROKER_URL": redis_url,
             "NNQ_LEASE_SECONDS": str(lease_seconds), **(env or {})},
            tmp_path / f"worker-{len(started)}.log", queues)
        started.append(proc)
        if wait:
            proc.wait_ready()
        return proc

    yield start
    for proc in started:
        proc.stop()
