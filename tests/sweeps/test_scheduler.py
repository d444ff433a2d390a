"""advance_sweep on both databases with real Redis: parallelism, exactly one job per trial
(also under concurrent callers), finishing, the best trial, cancelled sweeps left alone."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from service.db import Job, Sweep, SweepTrial
from service.db import jobs as jobstore
from service.sweeps import store
from service.sweeps.scheduler import advance_all, advance_sweep
from tests.sweeps.trials import OWNER, run_trial

CONCURRENT_CALLERS = 4


def _sweep(sessions, trials: int = 4, parallelism: int = 2) -> int:
    request = {"name": "sched",
               "base": {"data": {"dataset": "synthetic", "samples": 100},
                        "model": {"preset": "mlp", "hidden": [8]}, "train": {"epochs": 3}},
               "space": {"train.optimizer.lr": {"loguniform": [1e-4, 1e-1]}},
               "max_trials": trials, "parallelism": parallelism, "seed": 5}
    with sessions() as session:
        return store.create_sweep(session, request)[0].id


def _advance(sessions, sweep_id, redis_url) -> Sweep:
    with sessions() as session:
        advance_sweep(session, sweep_id, broker_url=redis_url)
        return store.get_sweep(session, sweep_id)


def _jobs(sessions, sweep_id) -> list[Job]:
    with sessions() as session:
        return list(session.scalars(select(Job).where(Job.sweep_id == sweep_id)
                                    .order_by(Job.id)))


def test_keeps_parallelism_jobs_in_flight_and_links_each_trial_once(sessions, redis_url):
    sweep_id = _sweep(sessions, trials=4, parallelism=2)
    sweep = _advance(sessions, sweep_id, redis_url)
    assert sweep.status == "running"
    jobs = _jobs(sessions, sweep_id)
    assert [j.status for j in jobs] == ["queued", "queued"]
    assert [j.name for j in jobs] == ["sched-t0", "sched-t1"]
    _advance(sessions, sweep_id, redis_url)
    assert len(_jobs(sessions, sweep_id)) == 2  # idempotent: nothing new while 2 in flight
    with sessions() as session:
        linked = dict(session.execute(select(SweepTrial.index, SweepTrial.job_id)
                                      .where(SweepTrial.sweep_id == sweep_id)).all())
        assert linked == {0: jobs[0].id, 1: jobs[1].id, 2: None, 3: None}
        assert jobs[0].spec == session.scalar(select(SweepTrial.spec).where(
            SweepTrial.sweep_id == sweep_id, SweepTrial.index == 0))


def test_finishes_with_the_best_succeeded_trial_never_a_pruned_one(sessions, redis_url):
    sweep_id = _sweep(sessions, trials=4, parallelism=2)
    run_trial(sessions, sweep_id, 0, [0.5, 0.6, 0.7])
    run_trial(sessions, sweep_id, 1, [0.5, 0.6, 0.8])
    sweep = _advance(sessions, sweep_id, redis_url)
    assert sweep.status == "running" and sweep.best_job_id == _jobs(sessions, sweep_id)[1].id
    pruned = run_trial(sessions, sweep_id, 2, [0.95], outcome="running")
    with sessions() as session:
        assert jobstore.mark_pruned(session, pruned, OWNER, "pruned at epoch 1")
    run_trial(sessions, sweep_id, 3, [0.4], outcome="failed")
    sweep = _advance(sessions, sweep_id, redis_url)
    jobs = _jobs(sessions, sweep_id)
    assert len(jobs) == 4 and sweep.status == "succeeded" and sweep.finished_at is not None
    assert sweep.best_job_id == jobs[1].id and sweep.error is None
    _advance(sessions, sweep_id, redis_url)
    assert len(_jobs(sessions, sweep_id)) == 4


def test_a_sweep_whose_every_trial_failed_fails(sessions, redis_url):
    sweep_id = _sweep(sessions, trials=2, parallelism=2)
    run_trial(sessions, sweep_id, 0, [0.1], outcome="failed")
    run_trial(sessions, sweep_id, 1, [0.1], outcome="failed")
    sweep = _advance(sessions, sweep_id, redis_url)
    assert sweep.status == "failed" and sweep.best_job_id is None
    assert "all 2 trials failed" in sweep.error and "diverged" in sweep.error


def test_cancelled_sweep_gets_no_new_jobs(sessions, redis_url):
    sweep_id = _sweep(sessions, trials=4, parallelism=2)
    _advance(sessions, sweep_id, redis_url)
    with sessions() as session:
        store.request_cancel_sweep(session, sweep_id)
        advance_all(session, broker_url=redis_url)
    jobs = _jobs(sessions, sweep_id)
    assert len(jobs) == 2 and {j.status for j in jobs} == {"cancelled"}
    assert _advance(sessions, sweep_id, redis_url).status == "cancelled"


def test_concurrent_callers_create_exactly_parallelism_jobs(sessions, redis_url):
    sweep_id = _sweep(sessions, trials=8, parallelism=3)
    barrier = threading.Barrier(CONCURRENT_CALLERS)
    errors = []

    def call():
        try:
            barrier.wait()
            with sessions() as session:
                advance_sweep(session, sweep_id, broker_url=redis_url)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(CONCURRENT_CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 3
        linked = session.scalar(select(func.count()).select_from(SweepTrial)
                                .where(SweepTrial.job_id.is_not(None)))
        assert linked == 3
