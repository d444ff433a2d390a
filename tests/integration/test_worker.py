"""A real ``celery -A workers worker`` process, real Redis, real database.

Jobs are inserted through the store and enqueued with ``send_task`` exactly as
the API does (the HTTP path is tested in tests/service). The waits below are
hang guards, not timing assertions.
"""

from __future__ import annotations

import pytest
from celery import Celery
from sqlalchemy import select

import nncore
from nnq.status import JobStatus
from service.db import EpochMetric, Job, Model, ModelTensor
from service.db import jobs as store
from tests.support import wait_until

pytestmark = pytest.mark.integration

HANG_GUARD_S = 120.0
POLL_S = 0.05
KILL_LEASE_S = 3


def _spec(name, *, epochs, hidden, batch_size=20, samples=600, **train):
    return {"name": name, "data": {"dataset": "synthetic", "samples": samples},
            "model": {"preset": "mlp", "hidden": hidden, "batchnorm": True},
            "train": {"epochs": epochs, "batch_size": batch_size,
                      "optimizer": {"type": "sgd", "lr": 0.01}, "seed": 1, **train}}


# Long enough (hundreds of iterations per epoch) that a kill or cancel lands mid-run.
LONG_SPEC = _spec("long", epochs=40, hidden=[64, 64], batch_size=2, samples=1000)


@pytest.fixture
def enqueue(redis_url):
    """Send ``nnq.train_job`` like service.queue: JSON, only the id, queue by device."""
    client = Celery("nnq-test-client", broker=redis_url)
    client.conf.update(task_serializer="json", accept_content=["json"])

    def send(job_id: int, queue: str = "cpu") -> None:
        client.send_task("nnq.train_job", args=[job_id], queue=queue)

    yield send
    client.close()


def _submit(sessions, spec) -> int:
    with sessions() as session:
        return store.create_job(session, spec, spec.get("device", "cpu"))[0].id


def _job(sessions, job_id) -> Job:
    with sessions() as session:
        return store.get_job(session, job_id)


def _metric_rows(sessions, job_id) -> list[EpochMetric]:
    with sessions() as session:
        return list(session.scalars(select(EpochMetric).where(EpochMetric.job_id == job_id)
                                    .order_by(EpochMetric.epoch)))


def _wait_for(what, predicate, workers=()):
    return wait_until(what, predicate, workers, timeout=HANG_GUARD_S, poll=POLL_S)


def _wait_terminal(sessions, job_id, workers=()) -> Job:
    return _wait_for(f"job {job_id} to end",
                     lambda: (j := _job(sessions, job_id)).status in JobStatus.FINISHED and j,
                     workers)


def test_job_trains_to_a_model_with_every_tensor_and_duplicates_are_dropped(
        sessions, worker, enqueue):
    workers = [worker(wait=False), worker(wait=False)]
    for w in workers:
        w.wait_ready()
    spec = _spec("happy", epochs=3, hidden=[32, 16])
    job_id = _submit(sessions, spec)
    enqueue(job_id)
    enqueue(job_id)  # a second delivery: whichever worker gets it must drop it

    job = _wait_terminal(sessions, job_id, workers)
    assert job.status == "succeeded", job.error
    assert job.attempts == 1
    assert (job.epoch, job.iteration) == (3, job.total_iterations)
    assert [m.epoch for m in _metric_rows(sessions, job_id)] == [1, 2, 3]
    with sessions() as session:
        model = session.scalars(select(Model).where(Model.job_id == job_id)).one()
        assert job.model_id == model.id and model.metrics["epoch"] == 3
        tensors = {t.name: t.role for t in session.scalars(
            select(ModelTensor).where(ModelTensor.model_id == model.id))}
    batchnorms = [i for i, layer in enumerate(model.layers) if layer["type"] == "batchnorm"]
    assert len(batchnorms) == 2
    for i in batchnorms:
        assert tensors[f"{i}.running_mean"] == tensors[f"{i}.running_var"] == "buffer"
        assert tensors[f"{i}.gamma"] == tensors[f"{i}.beta"] == "param"
    _wait_for("the duplicate delivery to be dropped",
              lambda: any("dropped" in w.log() for w in workers), workers)


def test_killed_worker_job_resumes_from_its_checkpoint(sessions, worker, enqueue):
    first = worker(lease_seconds=KILL_LEASE_S)
    job_id = _submit(sessions, LONG_SPEC)
    enqueue(job_id)
    _wait_for("epoch 1 to be recorded", lambda: _metric_rows(sessions, job_id), [first])
    first.kill()
    before = {m.epoch: m.id for m in _metric_rows(sessions, job_id)}
    assert _job(sessions, job_id).status == "running"
    assert max(before) < LONG_SPEC["train"]["epochs"]

    second = worker(lease_seconds=KILL_LEASE_S)
    job = _wait_terminal(sessions, job_id, [second])
    assert job.status == "succeeded", job.error
    assert job.attempts == 2
    rows = _metric_rows(sessions, job_id)
    assert [m.epoch for m in rows] == list(range(1, LONG_SPEC["train"]["epochs"] + 1))
    assert {m.epoch: m.id for m in rows if m.epoch in before} == before  # not rewritten
    assert f"resuming after epoch {max(before)}" in second.log()
    with sessions() as session:
        assert len(session.scalars(select(Model).where(Model.job_id == job_id)).all()) == 1


def test_cancelled_running_job_ends_cancelled(sessions, worker, enqueue):
    w = worker()
    job_id = _submit(sessions, LONG_SPEC)
    enqueue(job_id)
    _wait_for("training progress", lambda: _job(sessions, job_id).iteration > 0, [w])
    with sessions() as session:
        store.request_cancel(session, job_id)

    job = _wait_terminal(sessions, job_id, [w])
    assert job.status == "cancelled"
    assert job.epoch < LONG_SPEC["train"]["epochs"] and job.model_id is None
    assert job.lease_owner is None and job.finished_at is not None


def test_unrunnable_jobs_fail_with_a_readable_reason(sessions, worker, enqueue, tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    w = worker(env={"NNQ_DATA_DIR": str(empty)}, queues="cpu,gpu")
    # weight decay 1 with lr 10 multiplies every weight by -9 per step: inf within an epoch
    diverging = _submit(sessions, _spec("diverge", epochs=3, hidden=[32], weight_decay=1.0,
                                        optimizer={"type": "sgd", "lr": 10.0}))
    missing = _submit(sessions, {**_spec("missing", epochs=1, hidden=[8]),
                                 "data": {"dataset": "mnist"}})
    too_big = _submit(sessions, _spec("too-big", epochs=1, hidden=[5000, 5000]))
    on_gpu = _submit(sessions, {**_spec("gpu", epochs=1, hidden=[8]), "device": "gpu"})
    enqueue(diverging)
    enqueue(missing)
    enqueue(too_big)
    enqueue(on_gpu, queue="gpu")

    job = _wait_terminal(sessions, diverging, [w])
    assert job.status == "failed"
    assert "diverged" in job.error and ("nan" in job.error or "inf" in job.error)
    job = _wait_terminal(sessions, missing, [w])
    assert job.status == "failed"
    assert "data error" in job.error and "mnist" in job.error and "not found" in job.error
    job = _wait_terminal(sessions, too_big, [w])
    assert job.status == "failed"
    assert "invalid spec" in job.error and "limit" in job.error
    job = _wait_terminal(sessions, on_gpu, [w])
    if nncore.cupy_available():
        assert job.status == "succeeded", job.error
    else:
        assert job.status == "failed" and "CuPy is not usable" in job.error
