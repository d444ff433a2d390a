"""A PostgreSQL cluster of a test's own, made with initdb and started, stopped and restarted
with pg_ctl, so a test can take the database away without touching the shared server.

When the tests run as root the server programs run as the unprivileged user ``nobody``
(PostgreSQL refuses root), from a temp dir outside pytest's root-only tmp dirs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from nnq.processes import LOCALHOST, free_port
from tests import support

PG_PROGRAMS = ("initdb", "pg_ctl")
UNPRIVILEGED = "nobody"
PG_START_TIMEOUT_S = 60


class PrivateCluster:
    """A PostgreSQL cluster of this test's own on a free port, started and stopped by pg_ctl."""

    def __init__(self, root: Path):
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@{LOCALHOST}:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        as_user = ["runuser", "-u", UNPRIVILEGED, "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*as_user, *argv], capture_output=True, text=True,
                              timeout=PG_START_TIMEOUT_S, check=False)
        assert done.returncode == 0, f"{argv[0]} failed:\n{done.stdout}\n{done.stderr}"

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses={LOCALHOST}"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-o", options, "-w", "-t", str(PG_START_TIMEOUT_S), "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


@contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    """A started, migrated cluster, stopped and deleted afterwards; skips the test when the
    PostgreSQL server programs are not installed."""
    from service.db import engine_for

    missing = [p for p in PG_PROGRAMS if shutil.which(p) is None]
    if missing:
        pytest.skip(f"PostgreSQL server programs not installed: {missing}")
    root = Path(tempfile.mkdtemp(prefix="nnq-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, UNPRIVILEGED)
    pg = PrivateCluster(root)
    try:
        pg.init()
        pg.start()
        support.migrate(pg.url)
        yield pg
    finally:
        engine_for(pg.url).dispose()
        subprocess.run(["pg_ctl", "-D", str(pg.data), "-m", "immediate", "stop"],
                       capture_output=True, check=False,
                       **({"user": UNPRIVILEGED} if os.geteuid() == 0 else {}))
        shutil.rmtree(root, ignore_errors=True)
