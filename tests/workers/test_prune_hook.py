"""The worker side of pruning: JobTracker asks after recording an epoch, a yes raises Pruned,
and mark_pruned ends the job ``pruned`` with its rows kept (real DB, both engines)."""

import os
import subprocess
import sys

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from service.db import EpochMetric
from service.db import jobs as store
from tests.workers.conftest import LEASE_S, OWNER
from workers.tracker import JobTracker, Pruned

ROW = {"epoch": 1, "train_loss": 2.0, "train_acc": 0.2, "val_acc": 0.1, "test_acc": 0.1,
       "seconds": 0.1}


def _rows(sessions, job_id):
    with sessions() as session:
        return list(session.scalars(select(EpochMetric.epoch)
                                    .where(EpochMetric.job_id == job_id)))


def test_a_prune_verdict_comes_after_the_row_and_ends_the_job_pruned(sessions, claimed):
    seen = []

    def prune():
        seen.append(_rows(sessions, claimed))
        return "pruned at epoch 1 by the median rule"

    with JobTracker(sessions, claimed, OWNER, LEASE_S, bytes, prune=prune) as tracker:
        with pytest.raises(Pruned, match="median rule"):
            tracker.on_epoch(ROW)
    assert seen == [[1]]  # the decision saw this epoch's row
    with sessions() as session:
        assert store.mark_pruned(session, claimed, OWNER, "pruned at epoch 1 by the median rule")
        job = store.get_job(session, claimed)
        assert job.status == "pruned" and job.error.startswith("pruned at epoch 1")
        assert job.model_id is None and job.finished_at is not None and job.lease_owner is None
        assert not store.mark_pruned(session, claimed, OWNER, "again")  # terminal stays
    assert _rows(sessions, claimed) == [1]


def test_no_verdict_or_a_db_blip_lets_training_go_on(sessions, claimed):
    def blip():
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    with JobTracker(sessions, claimed, OWNER, LEASE_S, bytes, prune=lambda: None) as tracker:
        tracker.on_epoch(ROW)
    with JobTracker(sessions, claimed, OWNER, LEASE_S, bytes, prune=blip) as tracker:
        tracker.on_epoch({**ROW, "epoch": 2})
    with sessions() as session:
        assert store.get_job(session, claimed).status == "running"


def test_mark_pruned_needs_the_lease(sessions, claimed):
    with sessions() as session:
        assert not store.mark_pruned(session, claimed, "someone-else", "no")
        assert store.get_job(session, claimed).status == "running"


@pytest.mark.parametrize("given,expected", [(None, "1"), ("2", "2")])
def test_worker_processes_default_to_one_blas_thread(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if given:
        env["OPENBLAS_NUM_THREADS"] = given
    out = subprocess.run(
        [sys.executable, "-c", "import os, workers; print(os.environ['OPENBLAS_NUM_THREADS'])"],
        capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == expected
