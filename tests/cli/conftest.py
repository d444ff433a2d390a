"""Fixtures shared by the `nnq` command tests: a real API process on the test's DB and broker."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nnq.processes import free_port, stop_process
from tests.cli.cli_helpers import ROOT, cli_env, wait_for_http


@pytest.fixture
def api_url(database_url, redis_url, tmp_path):
    """`flask --app service run` on a free port, on the test's database and broker."""
    port = free_port()
    log = tmp_path / "api.log"
    env = cli_env(NNQ_DATABASE_URL=database_url, NNQ_BROKER_URL=redis_url)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "service", "run", "--port", str(port),
             "--no-reload"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/api/v1/health", process, log)
        yield url
    finally:
        stop_process(process)
