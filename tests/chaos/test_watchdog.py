"""A training loop that hangs while its process lives loses its job (issue 9, item 5).

The first worker's training blocks inside nncore (``tests.chaos.faults.HangingWorker``) after
its first epoch is stored; its heartbeat thread and reconciler keep running. With
``NNQ_STALL_SECONDS`` short, the heartbeat stops renewing the lease, the lease runs out, a
reconciler requeues the job and a second worker resumes it from the checkpoint and finishes
it. Then the first worker is released: its late writes (heartbeat, epoch rows, model) are
refused by the owner check, and it says so. Real Redis, database and Celery workers.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from nnq.status import JobStatus
from service.db import EpochMetric, JobAttempt, Model
from service.db import jobs as store
from service.queue import enqueue
from tests.chaos.faults import HangingWorker
from tests.support import wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

LEASE_S = 4
STALL_S = 2
HANG_GUARD_S = 90.0
EPOCHS = 4
STEPS_PER_EPOCH = 24  # 600 samples, a fifth for validation, batches of 20
BLOCK_AT_STEP = STEPS_PER_EPOCH + 5  # inside the second epoch: the first is stored
SPEC = {"name": "hangs", "data": {"dataset": "synthetic", "samples": 600, "val_fraction": 0.2},
        "model": {"preset": "mlp", "hidden": [16]},
        "train": {"epochs": EPOCHS, "batch_size": 20, "optimizer": {"type": "adam", "lr": 0.01},
                  "seed": 3}}


def test_a_hung_job_moves_to_another_worker_and_the_hung_one_is_fenced_off(
        database_url, redis_url, sessions, worker, tmp_path):
    env = {"NNQ_DATABASE_URL": database_url, "NNQ_BROKER_URL": redis_url,
           "NNQ_LEASE_SECONDS": str(LEASE_S), "NNQ_STALL_SECONDS": str(STALL_S)}
    hung = HangingWorker(env, tmp_path / "hung.log", BLOCK_AT_STEP)
    try:
        hung.wait_ready()
        with sessions() as session:
            job_id = store.create_job(session, SPEC, "cpu")[0].id
        enqueue(job_id, "cpu", broker_url=redis_url)
        hung.wait_blocked(HANG_GUARD_S)
        with sessions() as session:
            assert store.latest_checkpoint(session, job_id).epoch == 1
        rescuer = worker(lease_seconds=LEASE_S)

        def ended():
            with sessions() as session:
                job = store.get_job(session, job_id)
            return job.status in JobStatus.FINISHED and job

        job = wait_until("the hung job to finish elsewhere", ended, [hung, rescuer],
                         timeout=HANG_GUARD_S)
        assert job.status == JobStatus.SUCCEEDED, job.error
        assert "no training progress" in hung.log()

        hung.release()
        wait_until("the released worker to find its lease gone",
                   lambda: "lease lost" in hung.log(), [hung], timeout=HANG_GUARD_S)
    finally:
        hung.stop()

    with sessions() as session:
        attempts = list(session.scalars(select(JobAttempt).where(JobAttempt.job_id == job_id)
                                        .order_by(JobAttempt.attempt)))
        epochs = list(session.scalars(select(EpochMetric.epoch)
                                      .where(EpochMetric.job_id == job_id)
                                      .order_by(EpochMetric.epoch)))
        models = session.scalar(select(func.count()).select_from(Model)
                                .where(Model.job_id == job_id))
    assert [(a.outcome, a.resumed_from_epoch) for a in attempts] == [
        ("lost", 0), (JobStatus.SUCCEEDED, 1)]
    assert f":{hung.proc.pid}:" in attempts[0].worker
    assert f":{rescuer.proc.pid}:" in attempts[1].worker
    assert epochs == list(range(1, EPOCHS + 1))  # the late writes added nothing
    assert models == 1
