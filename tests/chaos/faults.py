"""Faults the restart, watchdog and attempt-budget tests cause for real.

- ``DurableRedis``: a private ``redis-server`` with ``appendonly yes`` (as docker-compose.yml
  runs it) on a private port (6391-6399), stopped and started again on the same port and
  data directory, so a test can take the broker away and bring it back with its messages;
- ``HangingWorker``: a real Celery worker, started by this module's ``__main__``, whose
  training blocks inside nncore (``Network.gradient``) at a chosen step until the test
  creates a release file: the process, its heartbeat thread and its reconciler live on, only
  training makes no progress, which is what the stall watchdog must notice;
- ``hold_sqlite_write_lock``: another connection that holds a SQLite file's write lock.

``python -m tests.chaos.faults BLOCK_AT_STEP BLOCKED_FILE RELEASE_FILE CELERY_ARGS...`` runs
the hanging worker.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from nnq.processes import (
    LOCALHOST,
    port_in_use,
    redis_reachable,
    stop_process,
    wait_until,
)
from tests.support import ROOT, STARTUP_TIMEOUT_S, WorkerProcess

PRIVATE_REDIS_PORTS = range(6391, 6400)
RELEASE_POLL_S = 0.05


class DurableRedis:
    """A private redis-server with an append-only file; ``stop``/``start`` keep its port and
    data, like a broker host that restarts."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.port = next((p for p in PRIVATE_REDIS_PORTS if not port_in_use(LOCALHOST, p)),
                         None)
        if self.port is None:
            raise RuntimeError(f"no free private Redis port in {PRIVATE_REDIS_PORTS}")
        self.url = f"redis://{LOCALHOST}:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", LOCALHOST, "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.data_dir)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(f"redis-server on port {self.port}", lambda: redis_reachable(self.url),
                   timeout=STARTUP_TIMEOUT_S)

    def stop(self) -> None:
        """SIGTERM: Redis flushes its append-only file and exits."""
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None


class HangingWorker(WorkerProcess):
    """A ``celery worker`` whose training blocks at ``block_at_step`` (the process's
    ``block_at_step``-th gradient) until ``release()``; ``wait_blocked()`` waits for it."""

    def __init__(self, env: dict[str, str], log_path: Path, block_at_step: int):
        self.name = f"nnq-hang-{uuid.uuid4().hex[:8]}"
        self.log_path = log_path
        self.blocked_file = log_path.with_suffix(".blocked")
        self.release_file = log_path.with_suffix(".release")
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed by stop(), as WorkerProcess
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.chaos.faults", str(block_at_step),
             str(self.blocked_file), str(self.release_file),
             "worker", "-Q", "cpu", "--pool", "solo", "--concurrency", "1",
             "-n", f"{self.name}@%h", "--loglevel", "INFO", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env={**os.environ, **env}, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_blocked(self, timeout: float) -> None:
        wait_until("the hanging worker's training to block", self.blocked_file.exists,
                   timeout=timeout)

    def release(self) -> None:
        self.release_file.touch()


def _block_training(block_at_step: int, blocked_file: Path, release_file: Path) -> None:
    """Make the ``block_at_step``-th gradient of this process wait for ``release_file``."""
    from nncore.network import Network

    gradient, steps = Network.gradient, [0]

    def blocking_gradient(self, x, t):
        steps[0] += 1
        if steps[0] == block_at_step:
            blocked_file.touch()
            while not release_file.exists():
                time.sleep(RELEASE_POLL_S)
        return gradient(self, x, t)

    Network.gradient = blocking_gradient


def hold_sqlite_write_lock(path: Path, seconds: float) -> threading.Thread:
    """Another connection takes SQLite's write lock now and commits after ``seconds``."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE alembic_version SET version_num = version_num")

    def release() -> None:
        time.sleep(seconds)
        holder.execute("COMMIT")
        holder.close()

    thread = threading.Thread(target=release)
    thread.start()
    return thread


def main(argv: list[str]) -> None:
    block_at_step, blocked_file, release_file, *celery_args = argv
    _block_training(int(block_at_step), Path(blocked_file), Path(release_file))
    from workers import app

    app.worker_main(argv=celery_args)


if __name__ == "__main__":
    main(sys.argv[1:])
