"""The attempt budget counts only attempts that made no progress (issue 9's SIGKILL report:
jobs failed "gave up after 3 attempts" although each attempt had checkpointed new epochs).

The rule (service.db.attempts): an attempt that stored a checkpoint newer than the one it
resumed from does not count against ``max_attempts``; ``NNQ_MAX_CLAIMS`` caps all claims of a
job. First with real processes: a job allowed one attempt survives SIGKILLs of its worker,
each after a new checkpoint. Then the rule itself, through the store on a real database:
attempts without progress do fail the job, and the cap ends even a job that progresses.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from nnq.status import JobStatus
from service.db import JobAttempt
from service.db import jobs as store
from service.queue import enqueue
from tests.support import wait_until

pytestmark = pytest.mark.chaos

LEASE_S = 3
HANG_GUARD_S = 120.0
POLL_S = 0.1
KILLS = 2
EPOCHS = 6
# About a second per epoch on one core: time to kill the worker between two checkpoints.
SPEC = {"name": "killed", "data": {"dataset": "synthetic", "samples": 3000,
                                   "val_fraction": 0.2},
        "model": {"preset": "mlp", "hidden": [64]},
        "train": {"epochs": EPOCHS, "batch_size": 2,
                  "optimizer": {"type": "adam", "lr": 0.001}, "seed": 1}}
TINY = {"data": {"dataset": "synthetic"}, "model": {"preset": "mlp", "hidden": [8]}}
METRICS = {"epoch": 1, "train_loss": 1.0, "train_acc": 0.5, "val_acc": 0.5, "test_acc": 0.5,
           "seconds": 0.1}


def _job(sessions, job_id):
    with sessions() as session:
        return store.get_job(session, job_id)


def _checkpoint_epoch(sessions, job_id) -> int:
    with sessions() as session:
        checkpoint = store.latest_checkpoint(session, job_id)
    return checkpoint.epoch if checkpoint else 0


def _open_attempt(sessions, job_id) -> JobAttempt | None:
    with sessions() as session:
        return session.scalars(select(JobAttempt).where(JobAttempt.job_id == job_id,
                                                        JobAttempt.ended_at.is_(None))).first()


@pytest.mark.integration
def test_sigkills_after_progress_do_not_use_up_the_attempts(sessions, worker, redis_url):
    with sessions() as session:
        job_id = store.create_job(session, SPEC, "cpu", max_attempts=1)[0].id
    workers = [worker(lease_seconds=LEASE_S)]
    enqueue(job_id, "cpu", broker_url=redis_url)
    for kill in range(KILLS):
        def progressed(number=kill + 1):
            attempt = _open_attempt(sessions, job_id)
            return (attempt is not None and attempt.attempt == number
                    and _checkpoint_epoch(sessions, job_id) > attempt.resumed_from_epoch)

        wait_until(f"attempt {kill + 1} to store a new checkpoint", progressed, workers,
                   timeout=HANG_GUARD_S, poll=POLL_S)
        workers[-1].kill()
        workers.append(worker(lease_seconds=LEASE_S, wait=False))

    job = wait_until("the job to end", lambda: (j := _job(sessions, job_id)).status
                     in JobStatus.FINISHED and j, workers, timeout=HANG_GUARD_S, poll=POLL_S)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.attempts == KILLS + 1 and job.max_attempts == 1
    with sessions() as session:
        attempts = list(session.scalars(select(JobAttempt).where(JobAttempt.job_id == job_id)
                                        .order_by(JobAttempt.attempt)))
    assert [a.outcome for a in attempts] == ["lost"] * KILLS + [JobStatus.SUCCEEDED]
    resumed = [a.resumed_from_epoch for a in attempts]
    assert resumed == sorted(set(resumed)) and resumed[0] == 0  # each resumed further on


def _claim_and_expire(sessions, job_id, owner, *, checkpoint_epoch: int | None) -> bool:
    """One attempt: claim with a lease that is over at once, optionally store a checkpoint,
    then let the reconciler's requeue judge it; returns whether the job was requeued."""
    with sessions() as session:
        assert store.claim_job(session, job_id, owner, 0) is not None
        if checkpoint_epoch is not None:
            store.record_epoch(session, job_id, owner, {**METRICS, "epoch": checkpoint_epoch},
                               b"state")
        return store.requeue_expired(session, job_id)


def test_attempts_without_progress_use_up_the_budget(sessions):
    with sessions() as session:
        job_id = store.create_job(session, TINY, "cpu", max_attempts=2)[0].id
    assert _claim_and_expire(sessions, job_id, "a", checkpoint_epoch=None)  # 1 spent
    assert _claim_and_expire(sessions, job_id, "b", checkpoint_epoch=1)  # progress: free
    assert _claim_and_expire(sessions, job_id, "c", checkpoint_epoch=2)  # progress: free
    assert not _claim_and_expire(sessions, job_id, "d", checkpoint_epoch=None)  # 2 spent
    job = _job(sessions, job_id)
    assert job.status == JobStatus.FAILED and job.attempts == 4
    assert "gave up after 2 attempt(s) without progress (of 4 in all)" in job.error


def test_max_claims_ends_a_job_that_always_progresses(sessions, monkeypatch):
    monkeypatch.setenv("NNQ_MAX_CLAIMS", "3")
    with sessions() as session:
        job_id = store.create_job(session, TINY, "cpu", max_attempts=1)[0].id
    for epoch in (1, 2):
        assert _claim_and_expire(sessions, job_id, f"w{epoch}", checkpoint_epoch=epoch)
    assert not _claim_and_expire(sessions, job_id, "w3", checkpoint_epoch=3)
    job = _job(sessions, job_id)
    assert job.status == JobStatus.FAILED and job.attempts == 3
    assert "gave up after 3 attempts in all (NNQ_MAX_CLAIMS=3), 0 of them without progress" \
        in job.error
    with sessions() as session:  # nothing more is claimed
        assert store.claim_job(session, job_id, "w4", 0) is None
