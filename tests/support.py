"""Real PostgreSQL, Redis and worker processes for the tests, each isolated per run.

Several test runs may share this machine, so nothing here uses a fixed port,
database name or Redis DB index.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from werkzeug.serving import make_server

from nnq.processes import WaitTimeout, start_redis, stop_process
from nnq.processes import wait_until as poll_until
from service import create_app

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL_ENV = "NNQ_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL_ENV = "NNQ_TEST_REDIS_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
REDIS_DB_INDEXES = range(1, 16)  # 0 is left to people's own stacks
REDIS_CLAIM_KEY = "nnq-test:claimed"
REDIS_CLAIM_TTL_S = 3600  # a crashed run's index frees itself
STARTUP_TIMEOUT_S = 60.0
STOP_GRACE_S = 5.0
READY_POLL_S = 0.1
LOG_TAIL_CHARS = 5000


def alembic_config(url: str):
    """An Alembic config for ``url`` that leaves the test's logging alone."""
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["database_url"] = url
    cfg.attributes["configure_logger"] = False
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def table_names(url: str) -> set[str]:
    """The tables the database at ``url`` has now."""
    from sqlalchemy import inspect

    from service.db import make_engine

    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


# PostgreSQL ---------------------------------------------------------------------------------

def postgres_admin_url() -> str:
    return os.environ.get(POSTGRES_URL_ENV) or DEFAULT_POSTGRES_URL


def postgres_unreachable_reason() -> str | None:
    """None when a server answers, else why not (used as the skip reason)."""
    import psycopg

    try:
        with psycopg.connect(postgres_admin_url(), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        detail = " ".join(str(exc).split())
        return f"PostgreSQL not reachable at {postgres_admin_url()}: {detail}"


def create_postgres_database() -> str:
    """A fresh empty database; returns its SQLAlchemy URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"nnq_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    admin = make_url(postgres_admin_url().replace("postgresql://", "postgresql+psycopg://", 1))
    return admin.set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    """Drop it even while a killed worker's connections linger."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    with psycopg.connect(postgres_admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Redis --------------------------------------------------------------------------------------

def start_private_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    """A throwaway ``redis-server`` without persistence, on a free port; its URL has no DB
    index (``claim_redis_db`` adds one)."""
    return start_redis(workdir, timeout=STARTUP_TIMEOUT_S, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


def claim_redis_db(server_url: str) -> str:
    """A URL for an empty DB index on the server, taken atomically (runs share servers).

    The claim is a key set with NX in an otherwise empty DB; ``flush_redis_db`` frees it.
    """
    import redis

    indexes = list(REDIS_DB_INDEXES)
    random.shuffle(indexes)
    token = uuid.uuid4().hex
    for index in indexes:
        url = f"{server_url.rstrip('/')}/{index}"
        client = redis.Redis.from_url(url)
        if not client.set(REDIS_CLAIM_KEY, token, nx=True, ex=REDIS_CLAIM_TTL_S):
            continue
        if client.dbsize() == 1:
            return url
        client.delete(REDIS_CLAIM_KEY)  # someone else's data lives there
    raise RuntimeError(f"no free Redis DB index on {server_url}")


def flush_redis_db(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


# Processes ----------------------------------------------------------------------------------

class WorkerProcess:
    """A real ``celery -A workers worker`` subprocess bound to a test's DB and broker."""

    def __init__(self, env: dict[str, str], log_path: Path, queues: str = "cpu"):
        self.name = f"nnq-test-{uuid.uuid4().hex[:8]}"
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q", queues,
             "--pool", "solo", "--concurrency", "1", "-n", f"{self.name}@%h",
             "--loglevel", "INFO", "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            cwd=ROOT, env={**os.environ, **env}, stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Until the worker logs that it consumes; fail with its log if it dies."""
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log()}")
            log = self.log()
            return f"{self.name}@" in log and " ready." in log

        try:
            poll_until(f"worker {self.name} to be ready", ready, timeout=timeout,
                       poll=READY_POLL_S)
        except WaitTimeout as exc:
            raise RuntimeError(f"{exc}:\n{self.log()}") from None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no ack, the lease simply stops being renewed."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        stop_process(self.proc, STOP_GRACE_S)
        self._log.close()


def wait_until(what: str, predicate, workers=(), *, timeout: float, poll: float = READY_POLL_S):
    """Poll ``predicate`` until it returns something truthy; on timeout fail the test with the
    tail of each worker's log, so a hung job says why."""
    import pytest

    try:
        return poll_until(what, predicate, timeout=timeout, poll=poll)
    except WaitTimeout as exc:
        logs = "\n".join(w.log()[-LOG_TAIL_CHARS:] for w in workers)
        pytest.fail(f"{exc}\n{logs}")


@contextmanager
def served_app(config: dict) -> Iterator[str]:
    """``create_app(config)`` served over real HTTP by a werkzeug thread on a free port;
    yields its base URL and shuts the server down on exit."""
    server = make_server("127.0.0.1", 0, create_app(config), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
