"""What the service benchmarks share: scratch databases, real processes, the machine's load.

Imported by ``bench/predict.py``, ``bench/latency.py``, ``bench/sweep_scaling.py`` and
``bench/scale_sim.py`` (the script's folder is on ``sys.path`` when it runs).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # so a checkout runs the benchmarks without installing nnq

from nnq.processes import stop_process_group, wait_until

POSTGRES_ADMIN_URL = os.environ.get("NNQ_BENCH_POSTGRES_URL",
                                    "postgresql://postgres@127.0.0.1:5432/postgres")
READY_TIMEOUT_S = 60.0
# Benchmarks run without these: this machine pins an old OpenBLAS kernel that slows NumPy.
PINNED_BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` prints them."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


def bench_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: ours without the pinned BLAS kernel, plus extra."""
    env = {k: v for k, v in os.environ.items() if k not in PINNED_BLAS_VARIABLES}
    env.update(extra)
    return env


def migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


def sqlite_database(directory: Path) -> str:
    """A fresh migrated SQLite file in ``directory``."""
    url = f"sqlite:///{directory}/bench.db"
    migrate(url)
    return url


class ScratchPostgres:
    """A fresh migrated PostgreSQL database for one run, dropped when the run ends."""

    def __init__(self, migrated: bool = True):
        self.migrated = migrated
        self.name = f"nnq_bench_{uuid.uuid4().hex[:12]}"
        self.url = ""

    def __enter__(self) -> str:
        import psycopg
        from sqlalchemy.engine import make_url

        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        admin = make_url(POSTGRES_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1))
        self.url = admin.set(database=self.name).render_as_string(hide_password=False)
        if self.migrated:
            migrate(self.url)
        return self.url

    def __exit__(self, *exc) -> None:
        import psycopg

        from service.db import engine_for

        engine_for(self.url).dispose()
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class Child:
    """A benchmark's child process (its own process group), logging to a file; ``port`` is
    where it serves, for a server."""

    port: int = 0

    def __init__(self, argv: list[str], log_path: Path, env: dict[str, str]):
        self.log_path = log_path
        with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, what: str, ready, timeout: float = READY_TIMEOUT_S) -> None:
        def check():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{what}: exited with {self.proc.returncode}:\n{self.log()}")
            return ready()

        wait_until(what, check, timeout=timeout)

    def stop(self) -> None:
        stop_process_group(self.proc)


def group_cpu_seconds(child: Child) -> float:
    """User + system CPU seconds of every live process in the child's process group."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == child.proc.pid:  # field 5 of stat, the process group
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def celery_worker(name: str, log_path: Path, env: dict[str, str], queues: str = "cpu",
                  concurrency: int = 1) -> Child:
    """``celery -A workers worker`` as nnq's entry point starts it, once it consumes."""
    worker = Child([sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q", queues,
                    "--concurrency", str(concurrency), "-n", f"{name}@%h", "--loglevel",
                    "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                   log_path, env)
    worker.wait_for(f"worker {name}", lambda: " ready." in worker.log())
    return worker
