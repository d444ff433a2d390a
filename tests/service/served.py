"""The API as deployments run it: gunicorn with ``service.gunicorn_conf``, in a subprocess on a
free local port, bound to a test's database and broker. Used where the test client cannot
stand in: a real socket (chunked bodies, over-long request lines) or a real client
(Schemathesis)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from nnq.processes import LOCALHOST, WaitTimeout, free_port, stop_process, wait_until
from tests.support import ROOT

STARTUP_TIMEOUT_S = 60.0
LIVE_PATH = "/api/v1/health/live"


def gunicorn_argv(port: int, workers: int) -> list[str]:
    """The compose ``api`` command, on a local port."""
    return [str(Path(sys.executable).parent / "gunicorn"), "-c", "python:service.gunicorn_conf",
            "--bind", f"{LOCALHOST}:{port}", "--workers", str(workers), "--timeout", "120",
            "service:create_app()"]


@contextmanager
def served_api(log_path: Path, env: dict[str, str], *, workers: int = 1) -> Iterator[str]:
    """The base URL (``http://127.0.0.1:PORT``) of a gunicorn serving the app with ``env``;
    stopped at exit. Fails with gunicorn's log when it does not come up."""
    port = free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(gunicorn_argv(port, workers), cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT, env={**os.environ, **env})
    url = f"http://{LOCALHOST}:{port}"

    def live() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}:\n"
                               f"{log_path.read_text(errors='replace')}")
        try:
            return httpx.get(url + LIVE_PATH, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(f"gunicorn on port {port}", live, timeout=STARTUP_TIMEOUT_S)
    except WaitTimeout as exc:
        stop_process(proc)
        raise RuntimeError(f"{exc}:\n{log_path.read_text(errors='replace')}") from None
    try:
        yield url
    finally:
        stop_process(proc)
