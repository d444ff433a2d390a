"""A job that outgrows NNQ_WORKER_MEMORY_MB fails with a readable reason, at once (no retry),
and its worker lives on to train the next job: a real ``celery -A workers worker`` process,
real Redis, real database on both engines."""

from __future__ import annotations

import pytest
from celery import Celery

import nncore
from nncore.memory import estimate_job_memory
from nnq.status import JobStatus
from service.db import jobs as store
from tests.support import wait_until

pytestmark = pytest.mark.integration

HANG_GUARD_S = 120.0
WORKER_MB = 64
# Estimated at about 680 MB: far beyond what the worker lets a job grow by. The submission
# limit is raised for the worker, which re-checks it, so only the worker's bound stops it.
TOO_BIG = {"name": "too-big", "data": {"dataset": "synthetic", "samples": 3000},
           "model": {"preset": "simple_convnet"},
           "train": {"epochs": 1, "batch_size": 1000, "seed": 1}}
FITS = {"name": "fits", "data": {"dataset": "synthetic", "samples": 200},
        "model": {"preset": "mlp", "hidden": [16]}, "train": {"epochs": 1, "batch_size": 20}}


@pytest.fixture
def enqueue(redis_url):
    client = Celery("nnq-test-client", broker=redis_url)
    client.conf.update(task_serializer="json", accept_content=["json"])
    yield lambda job_id: client.send_task("nnq.train_job", args=[job_id], queue="cpu")
    client.close()


def _submit(sessions, spec) -> int:
    with sessions() as session:
        return store.create_job(session, spec, "cpu")[0].id


def _ended(sessions, job_id, workers):
    def ended():
        with sessions() as session:
            job = store.get_job(session, job_id)
        return job if job.status in JobStatus.FINISHED else None
    return wait_until(f"job {job_id} to end", ended, workers, timeout=HANG_GUARD_S, poll=0.1)


def test_a_job_beyond_the_worker_limit_fails_with_the_reason_and_the_worker_goes_on(
        sessions, worker, enqueue):
    proc = worker(env={"NNQ_WORKER_MEMORY_MB": str(WORKER_MB),
                       "NNQ_MAX_JOB_MEMORY_MB": "100000", "NNQ_MAX_ATTEMPTS": "3"})
    big = _submit(sessions, TOO_BIG)
    enqueue(big)
    job = _ended(sessions, big, [proc])
    estimate = estimate_job_memory(nncore.parse_spec(TOO_BIG)).megabytes
    assert job.status == JobStatus.FAILED, (job.status, job.error)
    assert job.error.startswith("out of memory: "), job.error
    assert f"the estimate was {estimate} MB" in job.error
    assert f"the worker limit NNQ_WORKER_MEMORY_MB is {WORKER_MB} MB" in job.error
    assert job.attempts == 1  # failed at once, never retried

    small = _submit(sessions, FITS)
    enqueue(small)
    assert _ended(sessions, small, [proc]).status == JobStatus.SUCCEEDED


def test_the_worker_rechecks_the_job_memory_limit_of_a_row_written_by_other_means(
        sessions, worker, enqueue):
    proc = worker(env={"NNQ_MAX_JOB_MEMORY_MB": "64"})
    job_id = _submit(sessions, TOO_BIG)  # straight into the store: no API check
    enqueue(job_id)
    job = _ended(sessions, job_id, [proc])
    assert job.status == JobStatus.FAILED and job.attempts == 1
    assert job.error.startswith("invalid spec: "), job.error
    assert "train.batch_size" in job.error and "NNQ_MAX_JOB_MEMORY_MB is 64 MB" in job.error
