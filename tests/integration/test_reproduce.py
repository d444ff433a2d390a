"""Reproduction with real parts: `nnq reproduce --wait` against a served API, real Celery
worker processes (one BLAS thread each), Redis and the test's database. A job whose worker
was SIGKILLed mid-run and that resumed from its checkpoint on another worker is identical,
tensor for tensor, to its uninterrupted reproduction; so is a plain job's."""

from __future__ import annotations

import re

import pytest

from nnq import Client
from tests.cli.cli_helpers import nnq
from tests.support import served_app, wait_until

pytestmark = pytest.mark.integration

HANG_GUARD_S = 120.0
POLL_S = 0.05
KILL_LEASE_S = 3
# Hundreds of steps per epoch, so the kill lands mid-run and mid-epoch; Dropout, BatchNorm
# and shuffling all draw from generators the checkpoint must carry across the kill.
SPEC = {"name": "resumed", "data": {"dataset": "synthetic", "samples": 1000, "seed": 1},
        "model": {"preset": "mlp", "hidden": [64, 64], "batchnorm": True, "dropout": 0.1},
        "train": {"epochs": 8, "batch_size": 2, "optimizer": {"type": "sgd", "lr": 0.01},
                  "seed": 1}}


@pytest.fixture
def api_url(database_url, redis_url):
    """The API served over real HTTP (a werkzeug thread) on the test's database and broker."""
    with served_app({"NNQ_DATABASE_URL": database_url, "NNQ_BROKER_URL": redis_url}) as url:
        yield url


def _reproduce(api_url: str, model_id: int, workers) -> int:
    """`nnq reproduce MODEL --wait`; returns the reproduction's model id."""
    result = nnq(api_url, "reproduce", str(model_id), "--wait")
    logs = "\n".join(w.log()[-3000:] for w in workers)
    assert result.returncode == 0, result.stdout + result.stderr + logs
    verdict = re.search(rf"verdict: identical \(model {model_id} vs model (\d+)\)",
                        result.stdout)
    assert verdict, result.stdout
    return int(verdict.group(1))


def test_a_killed_and_resumed_job_reproduces_identically(api_url, worker):
    client = Client(api_url)
    first = worker(lease_seconds=KILL_LEASE_S)
    job = client.submit(SPEC)
    wait_until("epoch 1 to be recorded", lambda: len(client.metrics(job.id)) >= 1, [first],
               timeout=HANG_GUARD_S, poll=POLL_S)
    first.kill()
    assert client.job(job.id).status == "running"

    second = worker(lease_seconds=KILL_LEASE_S)
    job = wait_until("the resumed job to end", lambda: (j := client.job(job.id)).finished and j,
                     [second], timeout=HANG_GUARD_S, poll=POLL_S)
    assert job.status == "succeeded", job.error
    record = client.lineage(job.model_id)
    killed, resumed = record.run.attempts
    assert (killed.outcome, resumed.outcome) == ("lost", "succeeded")
    assert resumed.resumed_from_epoch >= 1
    assert record.environment["blas"]["threads"] == 1

    reproduced = _reproduce(api_url, job.model_id, [second])
    assert client.lineage(reproduced).run.attempts[0].resumed_from_epoch == 0
    # the reproduction was a plain, uninterrupted job: it reproduces too
    again = _reproduce(api_url, reproduced, [second])
    assert client.lineage(again).verdict == "identical"

    shown = nnq(api_url, "model", str(job.model_id))
    assert shown.returncode == 0, shown.stderr
    assert "identical" in shown.stdout and "lost" in shown.stdout
