"""Run records from real worker processes (real Redis, SQLite and PostgreSQL): per-iteration
losses, activation statistics and attempts of MLP and convnet jobs, across a SIGKILL.

The reference is nncore itself (tests/integration/records_reference.py, run with the worker's
BLAS settings): the same spec trained uninterrupted keeps exactly the same iterations with the
same losses (resume is bit-exact), and the stored model's tensors on the same probe batch give
exactly the last epoch's statistics.
"""

from __future__ import annotations

import pytest

from service.db import jobs as store
from service.db import records
from service.db.attempts import job_attempts
from tests.integration.records_reference import reference
from tests.integration.test_worker import (
    KILL_LEASE_S,
    _job,
    _metric_rows,
    _submit,
    _wait_for,
    _wait_terminal,
    enqueue,  # noqa: F401 - the fixture
)

pytestmark = pytest.mark.integration

# Epochs whose step count is no multiple of the loss stride, so epoch ends add points, and
# enough of them (tens of ms each) that the kill lands mid-run.
MLP = {"name": "records-mlp", "data": {"dataset": "synthetic", "samples": 2000},
       "model": {"preset": "mlp", "hidden": [64, 64], "batchnorm": True, "dropout": 0.1},
       "train": {"epochs": 60, "batch_size": 7, "optimizer": {"type": "sgd", "lr": 0.01},
                 "seed": 1}}
CONVNET = {"name": "records-convnet", "data": {"dataset": "synthetic", "samples": 700},
           "model": {"preset": "simple_convnet", "filters": 4, "size": 5, "hidden": 16,
                     "batchnorm": True},
           "train": {"epochs": 60, "batch_size": 10, "optimizer": {"type": "sgd", "lr": 0.01},
                     "seed": 1}}
KILL_AFTER_EPOCHS = 2


@pytest.mark.parametrize("spec", [MLP, CONVNET], ids=["mlp", "convnet"])
def test_records_survive_a_sigkill_without_duplicates_or_gaps_and_match_nncore(
        database_url, sessions, worker, enqueue, spec):  # noqa: F811 - the fixture
    first = worker(lease_seconds=KILL_LEASE_S)
    job_id = _submit(sessions, spec)
    enqueue(job_id)
    _wait_for(f"epoch {KILL_AFTER_EPOCHS} to be recorded",
              lambda: len(_metric_rows(sessions, job_id)) >= KILL_AFTER_EPOCHS, [first])
    first.kill()
    killed_after = max(m.epoch for m in _metric_rows(sessions, job_id))
    assert _job(sessions, job_id).status == "running"

    second = worker(lease_seconds=KILL_LEASE_S)
    job = _wait_terminal(sessions, job_id, [second])
    assert job.status == "succeeded", job.error
    expected = reference(spec, database_url, job_id)
    epochs = spec["train"]["epochs"]
    with sessions() as session:
        losses = records.iteration_losses(session, job_id)
        stats = records.activation_stats(session, job_id)
        attempts = job_attempts(session, job_id)
        every = records.loss_every(store.get_job(session, job_id))

    assert every == expected["every"] > 1
    assert expected["steps_per_epoch"] % every              # epoch ends add points
    assert [[r.iteration, r.epoch, r.loss] for r in losses] == expected["losses"]

    assert [(s.epoch, s.layer) for s in stats] == [(e, layer) for e in range(1, epochs + 1)
                                                   for layer in range(expected["hidden"])]
    assert {s.probe_size for s in stats} == {expected["probe_size"]}
    last = [{"layer": s.layer, "name": s.name, "type": s.type, "mean": s.mean, "std": s.std,
             "edges": s.edges, "counts": s.counts} for s in stats if s.epoch == epochs]
    assert last == expected["stats"]

    assert [(a.attempt, a.outcome) for a in attempts] == [(1, "lost"), (2, "succeeded")]
    assert attempts[0].resumed_from_epoch == 0
    assert attempts[1].resumed_from_epoch >= killed_after
    assert all(a.ended_at is not None and a.ended_at >= a.started_at for a in attempts)
