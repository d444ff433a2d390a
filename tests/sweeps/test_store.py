"""The sweep store on both databases: all trials at once (to be chosen, for an adaptive
strategy), idempotent create, cancel, and rows stored by an older version."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from service.db import Job, Sweep, SweepTrial
from service.sweeps import store
from service.sweeps.validate import SweepInvalid, plan_sweep, trial_spec
from tests.sweeps.trials import run_trial, trial_job

REQUEST = {"name": "lr", "base": {"data": {"dataset": "synthetic", "samples": 100},
                                  "model": {"preset": "mlp", "hidden": [8]},
                                  "train": {"epochs": 2}},
           "space": {"train.optimizer.lr": {"loguniform": [1e-4, 1e-1]}},
           "max_trials": 6, "seed": 3}


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_create_sweep_stores_every_trial_in_one_go(sessions):
    with sessions() as session:
        sweep, created = store.create_sweep(session, REQUEST)
        assert created and sweep.status == "queued" and sweep.metric == "val_acc"
    with sessions() as session:
        trials = session.scalars(select(SweepTrial).where(SweepTrial.sweep_id == sweep.id)
                                 .order_by(SweepTrial.index)).all()
        assert [t.index for t in trials] == list(range(6))
        assert all(t.job_id is None for t in trials) and count(session, Job) == 0
        assert trials[2].spec["name"] == "lr-t2"
        assert trials[2].spec["train"]["optimizer"]["lr"] == trials[2].params["train.optimizer.lr"]
        again, _ = store.create_sweep(session, REQUEST)
        assert [t.params for t in again.trials] == [t.params for t in trials]  # same seed


def test_invalid_request_writes_nothing_and_a_key_returns_the_same_sweep(sessions):
    with sessions() as session:
        with pytest.raises(SweepInvalid):
            store.create_sweep(session, {**REQUEST, "max_trials": 500}, "key-1")
        assert count(session, Sweep) == 0 and count(session, SweepTrial) == 0
        first, created = store.create_sweep(session, REQUEST, "key-1")
        second, again = store.create_sweep(session, REQUEST, "key-1")
        assert created and not again and second.id == first.id
        assert count(session, SweepTrial) == 6


def test_cancel_ends_queued_trials_flags_running_ones_and_leaves_pending(sessions):
    with sessions() as session:
        sweep, _ = store.create_sweep(session, REQUEST)
    queued = trial_job(sessions, sweep.id, 0)
    running = run_trial(sessions, sweep.id, 1, [0.5], outcome="running")
    with sessions() as session:
        cancelled = store.request_cancel_sweep(session, sweep.id)
        assert cancelled.status == "cancelled" and cancelled.finished_at is not None
        assert session.get(Job, queued, populate_existing=True).status == "cancelled"
        job = session.get(Job, running, populate_existing=True)
        assert job.status == "running" and job.cancel_requested
        trials = {t.index: t.status for t in store.trial_results(session, cancelled)}
        assert trials[0] == "cancelled" and trials[1] == "running" and trials[5] == "cancelled"
        assert store.request_cancel_sweep(session, sweep.id).status == "cancelled"
        assert store.request_cancel_sweep(session, 999) is None


def test_an_adaptive_sweep_stores_every_trial_to_be_chosen(sessions):
    with sessions() as session:
        sweep, _ = store.create_sweep(session, {**REQUEST, "strategy": "tpe"})
        trials = store.trial_results(session, sweep)
    assert [(t.index, t.params, t.chosen, t.status) for t in trials] == [
        (i, {}, False, "pending") for i in range(6)]
    assert sweep.request["sampler_options"] == {"startup_trials": None}


def test_a_sweep_stored_before_optuna_reads_advances_and_prunes(sessions, redis_url):
    """The rows an older version wrote: its own random draws (a hair outside the range, as
    exp(log(x)) could give), a request without the options that came later."""
    from service.sweeps.pruning import should_prune
    from service.sweeps.scheduler import advance_sweep

    old_request = {**REQUEST, "name": "old", "strategy": "random", "parallelism": 2,
                   "metric": "val_acc", "pruner": "asha", "pruner_options": {},
                   "base": plan_sweep(REQUEST).request["base"]}
    params = [{"train.optimizer.lr": lr} for lr in (0.1000000000000001, 1e-3, 5e-2, 2e-4)]
    with sessions() as session:
        sweep = Sweep(name="old", status="queued", request=old_request, metric="val_acc",
                      trials=[SweepTrial(index=i, params=p, spec=trial_spec(
                          old_request["base"], p, f"old-t{i}")) for i, p in enumerate(params)])
        session.add(sweep)
        session.commit()
        sweep_id = sweep.id
    with sessions() as session:
        advance_sweep(session, sweep_id, broker_url=redis_url)
        assert len(session.scalars(select(Job).where(Job.sweep_id == sweep_id)).all()) == 2
    run_trial(sessions, sweep_id, 0, [0.5, 0.6])
    slow = run_trial(sessions, sweep_id, 1, [0.2], outcome="running")
    with sessions() as session:
        reason = should_prune(session, session.get(Job, slow))
        assert "by ASHA, reduction factor 3" in reason  # the stored request's default
        shown = store.trial_results(session, store.get_sweep(session, sweep_id))
        assert shown[0].params == params[0] and all(t.chosen for t in shown)
