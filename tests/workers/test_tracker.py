"""JobTracker keeps the database off the per-iteration path (real DB, a stepped clock)."""

import pytest

from service.db import jobs as store
from tests.workers.conftest import LEASE_S, OWNER
from workers.tracker import CANCEL_POLL_S, PROGRESS_INTERVAL_S, JobTracker


class SteppedClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _progress(iteration):
    return {"epoch": 1, "iteration": iteration, "total_iterations": 100}


def test_progress_is_written_at_most_once_per_interval(sessions, claimed):
    clock = SteppedClock()
    with JobTracker(sessions, claimed, OWNER, LEASE_S, bytes, clock=clock) as tracker:
        for i in range(1, 50):
            tracker.on_iteration(_progress(i))
        with sessions() as session:
            assert store.get_job(session, claimed).iteration == 1
        clock.now += PROGRESS_INTERVAL_S
        tracker.on_iteration(_progress(50))
        with sessions() as session:
            assert store.get_job(session, claimed).iteration == 50


def test_cancel_flag_is_seen_at_the_next_poll(sessions, claimed):
    clock = SteppedClock()
    with JobTracker(sessions, claimed, OWNER, LEASE_S, bytes, clock=clock) as tracker:
        assert not tracker.should_stop()
        with sessions() as session:
            store.request_cancel(session, claimed)
        assert not tracker.should_stop()  # cached until the poll interval passes
        clock.now += CANCEL_POLL_S
        assert tracker.should_stop()


def test_a_lost_lease_stops_training(sessions, claimed):
    with sessions() as session:
        store.fail_job(session, claimed, "taken away")
    with JobTracker(sessions, claimed, OWNER, LEASE_S, bytes) as tracker:
        tracker.on_iteration(_progress(1))
        with pytest.raises(store.LeaseLost):
            tracker.should_stop()
