"""`nnq up` as a user runs it: a whole stack from one command, gone after Ctrl-C."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from nnq.processes import free_port, stop_process
from tests.cli.cli_helpers import NNQ, ROOT, cli_env, wait_for_http, wait_while_alive

pytestmark = pytest.mark.integration

JOB_SECONDS = 40.0
SPEC = {
    "name": "up-tiny",
    "data": {"dataset": "synthetic", "samples": 200, "val_fraction": 0.1},
    "model": {"preset": "mlp", "hidden": [8], "batchnorm": True},
    "train": {"epochs": 1, "batch_size": 40, "optimizer": {"type": "sgd", "lr": 0.1},
              "seed": 0},
    "device": "cpu",
}


def groups_alive(pgids: set[int]) -> set[int]:
    """The given process groups that still have a living (non-zombie) member."""
    alive = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pgid = fields[0], int(fields[2])
        if pgid in pgids and state != "Z":
            alive.add(pgid)
    return alive


@pytest.mark.timeout(90)
def test_up_serves_a_job_and_ctrl_c_stops_every_child(tmp_path):
    port = free_port()
    unreachable_broker = f"redis://127.0.0.1:{free_port()}/0"
    env = cli_env(NNQ_DATABASE_URL=f"sqlite:///{tmp_path / 'up.db'}",
                  NNQ_BROKER_URL=unreachable_broker)
    log = tmp_path / "up.log"
    with open(log, "wb") as out:
        up = subprocess.Popen([NNQ, "up", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=out, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        wait_for_http(f"{api}/health", up, log)
        wait_while_alive(up, log, "the stack to run", lambda: "stack running" in log.read_text(),
                         timeout=JOB_SECONDS)
        job = httpx.post(f"{api}/jobs", json=SPEC, timeout=10).json()

        def finished_status() -> str | None:
            status = httpx.get(f"{api}/jobs/{job['id']}", timeout=10).json()["status"]
            return status if status in ("succeeded", "failed", "cancelled") else None

        status = wait_while_alive(up, log, f"job {job['id']} to finish", finished_status,
                                  timeout=JOB_SECONDS)
        assert status == "succeeded", log.read_text()

        pids = {int(pid) for pid in re.findall(r"started \w+ \(pid (\d+)\)", log.read_text())}
        assert len(pids) == 3, log.read_text()  # private redis, api, worker
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=30) == 0, log.read_text()
        assert "stopping" in log.read_text()
        assert not groups_alive(pids), log.read_text()
    finally:
        stop_process(up)
