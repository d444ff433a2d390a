"""The job lifecycle store on a real migrated database (SQLite and PostgreSQL)."""

import datetime as dt
import hashlib

import numpy as np
import pytest
from sqlalchemy import select, update

import nncore
from service.db import Checkpoint, EpochMetric, Job, Model, ModelTensor, utcnow
from service.db import jobs as store
from service.db.tensors import decode_tensor

SPEC = {"name": "store-test", "data": {"dataset": "synthetic", "samples": 100},
        "model": {"preset": "mlp", "hidden": [8, 6], "batchnorm": True},
        "train": {"epochs": 2, "batch_size": 10}}
LEASE_S = 60


@pytest.fixture
def job(session):
    return store.create_job(session, SPEC, "cpu")[0]


def _expire_lease(session, job_id):
    session.execute(update(Job).where(Job.id == job_id)
                    .values(lease_expires_at=utcnow() - dt.timedelta(seconds=1)))
    session.commit()


def test_create_job_with_same_idempotency_key_returns_the_same_job(session):
    first, created = store.create_job(session, SPEC, "cpu", "key-1")
    again, created_again = store.create_job(session, SPEC, "cpu", "key-1")
    assert (created, created_again) == (True, False)
    assert again.id == first.id
    assert session.scalar(select(Job).where(Job.idempotency_key == "key-1")).id == first.id


def test_claim_is_exclusive_while_the_lease_is_alive(session, job):
    claimed = store.claim_job(session, job.id, "worker-a", LEASE_S)
    assert claimed.status == "running" and claimed.lease_owner == "worker-a"
    assert claimed.attempts == 1
    assert store.claim_job(session, job.id, "worker-b", LEASE_S) is None
    assert store.get_job(session, job.id).lease_owner == "worker-a"


def test_expired_lease_can_be_claimed_again_and_counts_the_attempt(session, job):
    store.claim_job(session, job.id, "worker-a", LEASE_S)
    _expire_lease(session, job.id)
    again = store.claim_job(session, job.id, "worker-b", LEASE_S)
    assert again.lease_owner == "worker-b" and again.attempts == 2
    assert not store.renew_lease(session, job.id, "worker-a", LEASE_S)
    assert store.renew_lease(session, job.id, "worker-b", LEASE_S)


def test_claim_fails_a_job_that_ran_out_of_attempts(session):
    job, _ = store.create_job(session, SPEC, "cpu", max_attempts=1)
    store.claim_job(session, job.id, "worker-a", LEASE_S)
    _expire_lease(session, job.id)
    assert store.claim_job(session, job.id, "worker-b", LEASE_S) is None
    ended = store.get_job(session, job.id)
    assert ended.status == "failed" and "gave up after 1 attempt" in ended.error


def test_record_epoch_writes_metrics_and_checkpoint_only_for_the_owner(session, job):
    store.claim_job(session, job.id, "worker-a", LEASE_S)
    metrics = {"epoch": 1, "train_loss": 2.0, "train_acc": 0.2, "val_acc": 0.1,
               "test_acc": float("nan"), "seconds": 0.5}
    store.record_epoch(session, job.id, "worker-a", metrics, b"state-1", iteration=10,
                       total_iterations=20)
    with pytest.raises(store.LeaseLost):
        store.record_epoch(session, job.id, "worker-b", {**metrics, "epoch": 2}, b"state-2")
    rows = session.scalars(select(EpochMetric).where(EpochMetric.job_id == job.id)).all()
    assert [(r.epoch, r.train_loss, r.test_acc) for r in rows] == [(1, 2.0, None)]
    checkpoint = session.get(Checkpoint, job.id)
    assert (checkpoint.epoch, checkpoint.state) == (1, b"state-1")
    progress = store.get_job(session, job.id)
    assert (progress.epoch, progress.iteration, progress.total_iterations) == (1, 10, 20)


def test_finish_job_stores_one_row_per_tensor_with_batchnorm_statistics(session, job):
    store.claim_job(session, job.id, "worker-a", LEASE_S)
    net = nncore.build(SPEC["model"], (784,), 10, seed=3)
    state = net.state_dict()
    for name in state:
        if name.endswith("running_mean"):
            state[name] = np.linspace(-1, 1, state[name].size, dtype=state[name].dtype)
    net.load_state_dict(state)
    model = store.finish_job(session, job.id, "worker-a", net, {"val_acc": 0.5}, "f" * 64)

    rows = session.scalars(select(ModelTensor).where(ModelTensor.model_id == model.id)).all()
    assert {r.name for r in rows} == set(net.state_dict())
    roles = net.tensor_roles()
    for row in rows:
        expected = np.asarray(net.state_dict()[row.name])
        assert row.role == roles[row.name]
        assert (row.dtype, row.shape, row.nbytes) == (expected.dtype.name, list(expected.shape),
                                                      expected.nbytes)
        assert row.sha256 == hashlib.sha256(row.data).hexdigest()
        np.testing.assert_array_equal(decode_tensor(row), expected)
    batchnorms = [i for i, layer in enumerate(net.layers_spec) if layer["type"] == "batchnorm"]
    assert len(batchnorms) == 2
    names = {r.name: r.role for r in rows}
    for i in batchnorms:
        assert names[f"{i}.running_mean"] == names[f"{i}.running_var"] == "buffer"
        assert names[f"{i}.gamma"] == names[f"{i}.beta"] == "param"

    finished = store.get_job(session, job.id)
    assert finished.status == "succeeded" and finished.model_id == model.id
    stored = session.get(Model, model.id)
    assert stored.layers == net.layers_spec and stored.input_shape == [784]


def test_cancel_ends_a_queued_job_at_once_and_flags_a_running_one(session, job):
    running, _ = store.create_job(session, SPEC, "cpu")
    store.claim_job(session, running.id, "worker-a", LEASE_S)
    assert store.request_cancel(session, job.id).status == "cancelled"
    flagged = store.request_cancel(session, running.id)
    assert flagged.status == "running" and flagged.cancel_requested
    assert store.cancel_requested(session, running.id)
    assert store.mark_cancelled(session, running.id, "worker-a")
    assert store.get_job(session, running.id).status == "cancelled"
    assert store.request_cancel(session, 10_000) is None


def test_requeue_expired_hands_a_dead_workers_job_to_exactly_one_caller(session, job):
    store.claim_job(session, job.id, "worker-a", LEASE_S)
    assert store.expired_leases(session) == []
    _expire_lease(session, job.id)
    assert [j.id for j in store.expired_leases(session)] == [job.id]
    assert store.requeue_expired(session, job.id)
    assert not store.requeue_expired(session, job.id)
    requeued = store.get_job(session, job.id)
    assert requeued.status == "queued" and requeued.lease_owner is None
    assert store.claim_job(session, job.id, "worker-b", LEASE_S).attempts == 2


def test_fail_job_keeps_the_reason_and_ends_the_lease(session, job):
    store.claim_job(session, job.id, "worker-a", LEASE_S)
    assert not store.fail_job(session, job.id, "nope", owner="worker-b")
    assert store.fail_job(session, job.id, "diverged (NaN/inf loss)", owner="worker-a")
    failed = store.get_job(session, job.id)
    assert (failed.status, failed.error, failed.lease_owner) == (
        "failed", "diverged (NaN/inf loss)", None)
    assert failed.finished_at is not None


def test_stale_queued_job_is_resent_by_one_caller_only(session, job):
    assert store.stale_queued(session, older_than_seconds=60) == []
    session.execute(update(Job).where(Job.id == job.id)
                    .values(updated_at=utcnow() - dt.timedelta(seconds=120)))
    session.commit()
    assert [j.id for j in store.stale_queued(session, older_than_seconds=60)] == [job.id]
    assert store.touch_queued(session, job.id, older_than_seconds=60)
    assert not store.touch_queued(session, job.id, older_than_seconds=60)
    assert store.stale_queued(session, older_than_seconds=60) == []
