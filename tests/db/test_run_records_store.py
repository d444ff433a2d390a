"""Run records in the store (SQLite and PostgreSQL): an epoch's losses and activation
statistics land with its metrics row and replace any earlier copy; each claim is an attempt
row that the job's end, a requeue or the next claim closes."""

import datetime as dt

import pytest
from sqlalchemy import func, select, update

from nncore.training import EpochRecord
from service.db import ActivationStat, IterationLoss, Job, records, utcnow
from service.db import jobs as store
from service.db.attempts import job_attempts, owner_for, owner_parts
from tests.db.test_jobs_store import SPEC

LEASE_S = 60
OWNER = "host-a:101:abcd1234"
OTHER = "host-b:202:ef567890"
STEPS = 3


def _stat(layer, kind, mean):
    return {"layer": layer, "name": f"{layer} {kind}", "type": kind, "mean": mean, "std": 0.5,
            "edges": [0.0, 0.5, 1.0], "counts": [3, 1]}


def _record(epoch, shift=0.0):
    first = (epoch - 1) * STEPS + 1
    return EpochRecord(epoch=epoch,
                       losses=tuple((i, 2.0 - i / 10 + shift) for i in range(first, first + STEPS)),
                       activations=(_stat(0, "affine", 0.1 + shift), _stat(1, "relu", 0.2)),
                       probe_size=4)


def _metrics(epoch):
    return {"epoch": epoch, "train_loss": 1.0, "train_acc": 0.5, "val_acc": 0.4,
            "test_acc": 0.4, "seconds": 0.1}


@pytest.fixture
def claimed(session):
    job = store.create_job(session, SPEC, "cpu")[0]
    store.claim_job(session, job.id, OWNER, LEASE_S)
    return job.id


def _expire(session, job_id):
    session.execute(update(Job).where(Job.id == job_id)
                    .values(lease_expires_at=utcnow() - dt.timedelta(seconds=1)))
    session.commit()


def _attempts(session, job_id):
    return [(a.attempt, a.worker, a.host, a.resumed_from_epoch, a.outcome,
             a.ended_at is not None) for a in job_attempts(session, job_id)]


def test_an_epochs_records_are_stored_with_its_row_and_a_repeat_replaces_them(session, claimed):
    for epoch in (1, 2):
        store.record_epoch(session, claimed, OWNER, _metrics(epoch), b"ck", record=_record(epoch))
    store.record_epoch(session, claimed, OWNER, _metrics(2), b"ck", record=_record(2, 0.5))
    losses = records.iteration_losses(session, claimed)
    assert [(r.iteration, r.epoch) for r in losses] == [(i, (i - 1) // STEPS + 1)
                                                       for i in range(1, 2 * STEPS + 1)]
    assert losses[-1].loss == pytest.approx(2.0 - 0.6 + 0.5)
    stats = records.activation_stats(session, claimed)
    assert [(s.epoch, s.layer, s.name) for s in stats] == [
        (1, 0, "0 affine"), (1, 1, "1 relu"), (2, 0, "0 affine"), (2, 1, "1 relu")]
    assert stats[2].mean == pytest.approx(0.6) and stats[2].edges == [0.0, 0.5, 1.0]
    assert stats[2].counts == [3, 1] and stats[2].probe_size == 4


def test_records_of_a_worker_that_lost_its_lease_are_not_written(session, claimed):
    _expire(session, claimed)
    store.claim_job(session, claimed, OTHER, LEASE_S)
    with pytest.raises(store.LeaseLost):
        store.record_epoch(session, claimed, OWNER, _metrics(1), b"ck", record=_record(1))
    assert session.scalar(select(func.count()).select_from(IterationLoss)) == 0
    assert session.scalar(select(func.count()).select_from(ActivationStat)) == 0


def test_non_finite_values_are_stored_as_null(session, claimed):
    record = EpochRecord(epoch=1, losses=((1, float("inf")),),
                         activations=({**_stat(0, "affine", float("nan")),
                                       "edges": [float("-inf"), 0.0]},),
                         probe_size=1)
    store.record_epoch(session, claimed, OWNER, _metrics(1), b"ck", record=record)
    assert records.iteration_losses(session, claimed)[0].loss is None
    stat = records.activation_stats(session, claimed)[0]
    assert stat.mean is None and stat.edges == [None, 0.0]


def test_last_epoch_metrics_of_many_jobs_match_one_at_a_time(session, claimed):
    other = store.create_job(session, SPEC, "cpu")[0].id
    for epoch in (1, 2):
        store.record_epoch(session, claimed, OWNER, {**_metrics(epoch), "train_acc": epoch / 4},
                           b"state")
    last = store.last_epoch_metrics_of(session, [claimed, other])
    assert last == {claimed: store.last_epoch_metrics(session, claimed)}
    assert last[claimed]["epoch"] == 2 and last[claimed]["train_acc"] == 0.5
    assert store.last_epoch_metrics_of(session, []) == {}


def test_loss_every_follows_the_jobs_reported_iteration_count(session, claimed):
    job = store.get_job(session, claimed)
    assert records.loss_every(job) == 1
    store.record_progress(session, claimed, OWNER, 1, 1, 5001)
    assert records.loss_every(store.get_job(session, claimed)) == 3


def test_a_claim_opens_an_attempt_and_finishing_closes_it_succeeded(session, claimed):
    assert _attempts(session, claimed) == [(1, OWNER, "host-a", 0, None, False)]
    first = job_attempts(session, claimed)[0]
    assert first.started_at == store.get_job(session, claimed).started_at
    store.fail_job(session, claimed, "bad", OWNER)
    assert _attempts(session, claimed) == [(1, OWNER, "host-a", 0, "failed", True)]


def test_a_dead_workers_attempt_ends_lost_and_the_next_resumes_from_the_checkpoint(
        session, claimed):
    store.record_epoch(session, claimed, OWNER, _metrics(1), b"ck", record=_record(1))
    store.record_epoch(session, claimed, OWNER, _metrics(2), b"ck", record=_record(2))
    _expire(session, claimed)
    store.claim_job(session, claimed, OTHER, LEASE_S)
    assert _attempts(session, claimed) == [(1, OWNER, "host-a", 0, "lost", True),
                                           (2, OTHER, "host-b", 2, None, False)]
    store.mark_cancelled(session, claimed, OTHER)
    assert _attempts(session, claimed)[-1][4:] == ("cancelled", True)


def test_the_reconcilers_requeue_ends_the_attempt_lost_and_a_retry_ends_it_queued(
        session, claimed):
    _expire(session, claimed)
    assert store.requeue_expired(session, claimed)
    assert _attempts(session, claimed)[0][4] == "lost"
    store.claim_job(session, claimed, OTHER, LEASE_S)
    assert store.release_job(session, claimed, OTHER, "OperationalError: blip")
    assert [a[4] for a in _attempts(session, claimed)] == ["lost", "queued"]
    store.claim_job(session, claimed, OWNER, LEASE_S)
    store.mark_pruned(session, claimed, OWNER, "median rule")
    assert [a[4] for a in _attempts(session, claimed)] == ["lost", "queued", "pruned"]


def test_a_job_given_up_after_its_last_worker_died_ends_that_attempt_lost(session):
    job = store.create_job(session, SPEC, "cpu", max_attempts=1)[0]
    store.claim_job(session, job.id, OWNER, LEASE_S)
    _expire(session, job.id)
    assert not store.requeue_expired(session, job.id)
    assert store.get_job(session, job.id).status == "failed"
    assert _attempts(session, job.id)[0][4:] == ("lost", True)


def test_owner_strings_name_host_and_pid():
    owner = owner_for("gpu-box.lan", 4242)
    assert owner_parts(owner) == ("gpu-box.lan", 4242)
    assert owner_parts("worker-a") == ("worker-a", None)
