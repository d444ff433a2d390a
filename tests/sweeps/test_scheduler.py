"""advance_sweep on both databases with real Redis: parallelism, exactly one job per trial
(also under concurrent callers), finishing, the best trial, cancelled sweeps left alone; an
adaptive strategy's trial chosen when its job is made, the same sequence for the same seed."""

from __future__ import annotations

import math
import threading

from sqlalchemy import func, select

from service.db import Job, Sweep, SweepTrial
from service.db import jobs as jobstore
from service.sweeps import store
from service.sweeps.scheduler import advance_all, advance_sweep
from service.sweeps.study import SAMPLER_KEY
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


def _adaptive(sessions, strategy: str = "tpe", trials: int = 4, parallelism: int = 2,
              **extra) -> int:
    request = {"name": f"ad-{strategy}",
               "base": {"data": {"dataset": "synthetic", "samples": 100},
                        "model": {"preset": "mlp", "hidden": [8]}, "train": {"epochs": 3}},
               "space": {"train.optimizer.lr": {"loguniform": [1e-4, 1e-1]},
                         "model.hidden.0": {"int": [4, 32]}},
               "strategy": strategy, "max_trials": trials, "parallelism": parallelism,
               "seed": 5, "sampler_options": {"startup_trials": 2}, **extra}
    with sessions() as session:
        return store.create_sweep(session, request)[0].id


def _trials(sessions, sweep_id) -> dict[int, SweepTrial]:
    with sessions() as session:
        return {t.index: t for t in session.scalars(
            select(SweepTrial).where(SweepTrial.sweep_id == sweep_id))}


def fake_accuracy(params: dict) -> float:
    """A deterministic 'training result' that prefers lr near 1e-2."""
    return round(0.9 - abs(math.log10(params["train.optimizer.lr"]) + 2) / 10, 6)


def test_an_adaptive_trial_is_chosen_when_its_job_is_made(sessions, redis_url):
    sweep_id = _adaptive(sessions, "cmaes")
    with sessions() as session:
        pending = store.trial_results(session, store.get_sweep(session, sweep_id))
    assert [t.chosen for t in pending] == [False] * 4 and pending[0].params == {}
    _advance(sessions, sweep_id, redis_url)
    trials = _trials(sessions, sweep_id)
    jobs = _jobs(sessions, sweep_id)
    assert [t.job_id for t in trials.values() if t.job_id] == [j.id for j in jobs]
    for index in (0, 1):
        params = trials[index].params
        assert 1e-4 <= params["train.optimizer.lr"] <= 1e-1
        assert 4 <= params["model.hidden.0"] <= 32
        assert jobs[index].spec == trials[index].spec
        assert jobs[index].spec["model"]["hidden"] == [params["model.hidden.0"]]
        assert jobs[index].spec["name"] == f"ad-cmaes-t{index}"
    assert trials[2].params == {} and trials[2].spec == {}
    for index in (0, 1):
        run_trial(sessions, sweep_id, index, [0.5, fake_accuracy(trials[index].params)])
    _advance(sessions, sweep_id, redis_url)
    chosen = _trials(sessions, sweep_id)[2].params
    assert chosen[SAMPLER_KEY]["cma:generation"] == 0  # the tag CMA-ES is replayed from
    with sessions() as session:
        shown = store.trial_results(session, store.get_sweep(session, sweep_id))[2]
    assert shown.chosen and SAMPLER_KEY not in shown.params


def _lockstep(sessions, redis_url, strategy: str) -> list[dict]:
    """Run a parallelism-1 sweep to the end, each trial 'trained' by fake_accuracy."""
    sweep_id = _adaptive(sessions, strategy, trials=5, parallelism=1)
    for index in range(5):
        _advance(sessions, sweep_id, redis_url)
        params = _trials(sessions, sweep_id)[index].params
        run_trial(sessions, sweep_id, index, [0.5, fake_accuracy(params)])
    assert _advance(sessions, sweep_id, redis_url).status == "succeeded"
    return [_trials(sessions, sweep_id)[i].params for i in range(5)]


def test_parallelism_one_gives_the_same_sequence_for_the_same_seed(sessions, redis_url):
    first = _lockstep(sessions, redis_url, "tpe")
    assert first == _lockstep(sessions, redis_url, "tpe")
    assert len({p["train.optimizer.lr"] for p in first}) == 5


def test_concurrent_callers_choose_each_adaptive_trial_once(sessions, redis_url):
    sweep_id = _adaptive(sessions, "tpe", trials=8, parallelism=3)
    barrier = threading.Barrier(CONCURRENT_CALLERS)

    def call():
        barrier.wait()
        with sessions() as session:
            advance_sweep(session, sweep_id, broker_url=redis_url)

    threads = [threading.Thread(target=call) for _ in range(CONCURRENT_CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    trials = _trials(sessions, sweep_id)
    assert len(_jobs(sessions, sweep_id)) == 3
    assert sum(1 for t in trials.values() if t.params) == 3
    assert sum(1 for t in trials.values() if t.job_id) == 3


def test_a_chosen_trial_without_a_valid_spec_fails_at_once(sessions, redis_url):
    sweep_id = _adaptive(sessions, "tpe", trials=2, parallelism=1)
    with sessions() as session:  # a space the checks would refuse, as if stored by a bug
        sweep = session.get(Sweep, sweep_id)
        sweep.request = {**sweep.request, "space": {"train.batch_size": {"int": [-9, -1]}}}
        session.commit()
    sweep = _advance(sessions, sweep_id, redis_url)
    jobs = _jobs(sessions, sweep_id)
    assert [j.status for j in jobs] == ["failed", "failed"] and sweep.status == "failed"
    assert "the chosen parameters give an invalid spec: train.batch_size" in jobs[0].error
