"""JobTracker keeps the database off the per-iteration path and within a write budget: one
heartbeat write (lease, progress, cancel flag) per interval, finished epochs written together
at most every ``epoch_write_seconds`` (real DB, a stepped clock)."""

import time

import pytest
from sqlalchemy import func, select

from service.db import Checkpoint, EpochMetric
from service.db import jobs as store
from service.db.scope import transaction
from tests.workers.conftest import LEASE_S, OWNER
from workers.tracker import RENEWALS_PER_LEASE, JobTracker

EPOCH_WRITE_S = 10.0
WAIT_S = 10.0
LONG_HEARTBEAT_S = 3600.0
SHORT_HEARTBEAT_S = 0.05


class SteppedClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _progress(iteration, epoch=1):
    return {"epoch": epoch, "iteration": iteration, "total_iterations": 100}


def _row(epoch):
    return {"epoch": epoch, "train_loss": 1.0, "train_acc": 0.5, "val_acc": 0.5,
            "test_acc": 0.5, "seconds": 0.1}


def _job(sessions, job_id):
    with sessions() as session:
        return store.get_job(session, job_id)


def _epochs_and_checkpoint(sessions, job_id):
    with sessions() as session:
        epochs = list(session.scalars(select(EpochMetric.epoch).where(
            EpochMetric.job_id == job_id).order_by(EpochMetric.epoch)))
        checkpoint = session.get(Checkpoint, job_id, populate_existing=True)
        return epochs, (checkpoint.epoch if checkpoint else None)


def _wait(what, predicate):
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, f"no {what} within {WAIT_S} s"
        time.sleep(0.01)


def test_only_the_first_iteration_writes_until_the_heartbeat(sessions, claimed):
    tracker = JobTracker(sessions, claimed, OWNER, LEASE_S, bytes)
    for i in range(1, 50):
        tracker.on_iteration(_progress(i))
    assert _job(sessions, claimed).iteration == 1
    before = _job(sessions, claimed).lease_expires_at
    with sessions() as session:
        assert tracker.beat(session)
    job = _job(sessions, claimed)
    assert (job.epoch, job.iteration, job.total_iterations) == (1, 49, 100)
    assert job.lease_expires_at > before


def test_the_first_iteration_is_written_at_once(sessions, claimed):
    with JobTracker(sessions, claimed, OWNER, LEASE_S, bytes,
                    heartbeat_seconds=LONG_HEARTBEAT_S) as tracker:
        tracker.on_iteration(_progress(1))
        assert _job(sessions, claimed).iteration == 1
        tracker.on_iteration(_progress(2))
    assert _job(sessions, claimed).iteration == 1  # later ones wait for the next beat


def test_the_heartbeat_thread_writes_the_latest_progress(sessions, claimed):
    with JobTracker(sessions, claimed, OWNER, LEASE_S, bytes,
                    heartbeat_seconds=SHORT_HEARTBEAT_S) as tracker:
        tracker.on_iteration(_progress(1))
        tracker.on_iteration(_progress(5))
        _wait("a heartbeat", lambda: _job(sessions, claimed).iteration == 5)


def test_the_heartbeat_renews_at_least_three_times_per_lease(sessions, claimed):
    tracker = JobTracker(sessions, claimed, OWNER, 6.0, bytes,
                         heartbeat_seconds=LONG_HEARTBEAT_S)
    assert tracker.heartbeat_seconds == 6.0 / RENEWALS_PER_LEASE
    assert JobTracker(sessions, claimed, OWNER, 600.0, bytes,
                      heartbeat_seconds=5.0).heartbeat_seconds == 5.0


def test_cancel_flag_is_seen_at_the_next_heartbeat(sessions, claimed):
    tracker = JobTracker(sessions, claimed, OWNER, LEASE_S, bytes)
    with sessions() as session:
        tracker.beat(session)
        assert not tracker.should_stop()
        store.request_cancel(session, claimed)
        assert not tracker.should_stop()  # nothing read between beats
        tracker.beat(session)
    assert tracker.should_stop()


def test_a_lost_lease_stops_training(sessions, claimed):
    with sessions() as session:
        store.fail_job(session, claimed, "taken away")
    with JobTracker(sessions, claimed, OWNER, LEASE_S, bytes) as tracker:
        tracker.on_iteration(_progress(1))  # its write finds the job gone

        def lost():
            try:
                tracker.should_stop()
            except store.LeaseLost:
                return True
            return False

        _wait("lease lost", lost)


def test_epochs_are_written_together_at_most_once_per_interval(sessions, claimed):
    clock = SteppedClock()
    with JobTracker(sessions, claimed, OWNER, LEASE_S, bytes, clock=clock,
                    epoch_write_seconds=EPOCH_WRITE_S) as tracker:
        tracker.on_epoch(_row(1))
        assert _epochs_and_checkpoint(sessions, claimed) == ([1], 1)  # the first at once
        clock.now += 1
        tracker.on_epoch(_row(2))
        tracker.on_epoch(_row(3))
        assert _epochs_and_checkpoint(sessions, claimed) == ([1], 1)
        clock.now += EPOCH_WRITE_S
        tracker.on_epoch(_row(4))
        assert _epochs_and_checkpoint(sessions, claimed) == ([1, 2, 3, 4], 4)
        tracker.on_epoch(_row(5))
        assert _epochs_and_checkpoint(sessions, claimed) == ([1, 2, 3, 4], 4)
    # the run's end writes the rest, without a checkpoint (a resume starts after epoch 4)
    assert _epochs_and_checkpoint(sessions, claimed) == ([1, 2, 3, 4, 5], 4)
    assert _job(sessions, claimed).epoch == 5


def test_epochs_pending_when_training_fails_are_still_written(sessions, claimed):
    clock = SteppedClock()
    with pytest.raises(RuntimeError), JobTracker(
            sessions, claimed, OWNER, LEASE_S, bytes, clock=clock,
            epoch_write_seconds=EPOCH_WRITE_S) as tracker:
        tracker.on_epoch(_row(1))
        tracker.on_epoch(_row(2))
        raise RuntimeError("diverged in epoch 3")
    assert _epochs_and_checkpoint(sessions, claimed) == ([1, 2], 1)


def test_epochs_handed_over_go_with_the_callers_transaction_or_not_at_all(sessions, claimed):
    """A worker writes the last epochs with the model: one transaction per job fewer."""
    clock = SteppedClock()
    with JobTracker(sessions, claimed, OWNER, LEASE_S, bytes, clock=clock,
                    epoch_write_seconds=EPOCH_WRITE_S) as tracker:
        tracker.on_epoch(_row(1))
        clock.now += 1
        tracker.on_epoch(_row(2))
        tracker.on_epoch(_row(3))
        pending = tracker.hand_over_pending()
    assert _epochs_and_checkpoint(sessions, claimed) == ([1], 1)  # not written on exit
    with sessions() as session, pytest.raises(RuntimeError), transaction(session):
        tracker.write_pending(session, pending)
        raise RuntimeError("storing the model failed")
    assert _epochs_and_checkpoint(sessions, claimed) == ([1], 1)  # rolled back with it
    with sessions() as session, transaction(session):
        tracker.write_pending(session, pending)
    assert _epochs_and_checkpoint(sessions, claimed) == ([1, 2, 3], 1)
    assert _job(sessions, claimed).epoch == 3


def test_a_sweep_trial_writes_every_epoch(sessions, claimed):
    with JobTracker(sessions, claimed, OWNER, LEASE_S, bytes, clock=SteppedClock(),
                    prune=lambda: None, epoch_write_seconds=EPOCH_WRITE_S) as tracker:
        for epoch in (1, 2, 3):
            tracker.on_epoch(_row(epoch))
            assert _epochs_and_checkpoint(sessions, claimed) == (list(range(1, epoch + 1)),
                                                                 epoch)


def test_heartbeat_is_one_update_that_answers_for_the_owner_only(sessions, claimed):
    with sessions() as session:
        assert store.heartbeat(session, claimed, OWNER, LEASE_S, _progress(7)) is False
        assert store.heartbeat(session, claimed, "someone-else", LEASE_S) is None
        store.request_cancel(session, claimed)
        assert store.heartbeat(session, claimed, OWNER, LEASE_S) is True
        assert session.scalar(select(func.count()).select_from(EpochMetric)) == 0
    assert _job(sessions, claimed).iteration == 7
