"""The sweep store on both databases: all trials at once, idempotent create, cancel."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from service.db import Job, Sweep, SweepTrial
from service.sweeps import store
from service.sweeps.validate import SweepInvalid
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
