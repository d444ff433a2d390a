"""Sweeps with real parts: HTTP submit -> the scheduler -> Redis -> real ``celery worker``
processes -> the SQL store, on SQLite and PostgreSQL: every strategy and pruner to the end on
two workers (read back through a restarted API), a worker SIGKILLed mid-trial in an up-front
and an adaptive sweep, bad requests.

The waits are hang guards, not timing assertions.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from nnq.status import JobStatus
from service import create_app
from service.db import Job, SweepTrial
from tests.support import wait_until

pytestmark = pytest.mark.integration

HANG_GUARD_S = 150.0
POLL_S = 0.1
KILL_LEASE_S = 3
FINISHED = ("succeeded", "failed", "cancelled")

# Adam over four decades of lr: the low end barely moves in 4 epochs, so the median rule
# has clear losers to stop (lr 1e-5 stays near chance, lr 1e-3 reaches about 0.25).
SWEEP = {
    "name": "it-sweep",
    "base": {"data": {"dataset": "synthetic", "samples": 400, "val_fraction": 0.25},
             "model": {"preset": "mlp", "hidden": [16]},
             "train": {"epochs": 4, "batch_size": 20, "optimizer": {"type": "adam", "lr": 0.01},
                       "seed": 1}},
    "space": {"train.optimizer.lr": {"loguniform": [1e-5, 1e-1]},
              "train.weight_decay": {"loguniform": [1e-8, 1e-4]}},
    "strategy": "random", "seed": 7, "max_trials": 12, "parallelism": 2,
    "pruner": "median", "pruner_options": {"warmup_epochs": 1, "min_trials": 2},
}
# Longer trials (batch 1, about two seconds each) so that a kill lands inside one.
SLOW_SWEEP = {
    **SWEEP, "name": "it-kill", "max_trials": 6, "pruner": "none", "pruner_options": {},
    "base": {"data": {"dataset": "synthetic", "samples": 2000},
             "model": {"preset": "mlp", "hidden": [64]},
             "train": {"epochs": 4, "batch_size": 1, "optimizer": {"type": "adam", "lr": 0.001},
                       "seed": 1}},
    "space": {"train.optimizer.lr": {"loguniform": [1e-4, 1e-2]}},
}


# Each strategy with a pruner, small and fast; the adaptive ones model from the third trial.
STRATEGY_PRUNERS = {"random": "percentile", "grid": "asha", "qmc": "median", "tpe": "hyperband",
                    "cmaes": "median", "gp": "none"}
SMALL_SPACE = {"train.optimizer.lr": {"loguniform": [1e-5, 1e-1]},
               "model.hidden.0": {"int_log": [4, 32]}}
GRID_SPACE = {"train.optimizer.lr": {"grid": [1e-4, 1e-2]},
              "model.hidden.0": {"int": [8, 24], "step": 16}}
ADAPTIVE = ("tpe", "cmaes", "gp")
SMALL_TRIALS = 5
# The up-front sweep as before; the adaptive one smaller (two random, then chosen by TPE after
# the kill by the processes that are left).
KILL_TRIALS = {"random": 6, "tpe": 4}


def _small(strategy: str) -> dict:
    pruner = STRATEGY_PRUNERS[strategy]
    return {**SWEEP, "name": f"it-{strategy}", "strategy": strategy, "seed": 3,
            "space": GRID_SPACE if strategy == "grid" else SMALL_SPACE,
            "max_trials": 4 if strategy == "grid" else SMALL_TRIALS,
            "pruner": pruner,
            "pruner_options": {"min_trials": 1} if pruner in ("median", "percentile") else {},
            **({"sampler_options": {"startup_trials": 2}} if strategy in ADAPTIVE else {})}


def _app(database_url, redis_url):
    return create_app({"NNQ_DATABASE_URL": database_url, "NNQ_BROKER_URL": redis_url,
                       "TESTING": True}).test_client()


@pytest.fixture
def client(database_url, redis_url):
    return _app(database_url, redis_url)


def _submit(client, request: dict) -> dict:
    response = client.post("/api/v1/sweeps", json=request)
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()


def _wait(what, predicate, workers):
    return wait_until(what, predicate, workers, timeout=HANG_GUARD_S, poll=POLL_S)


def _wait_finished(client, sweep_id: int, workers) -> dict:
    def finished():
        sweep = client.get(f"/api/v1/sweeps/{sweep_id}").get_json()
        return sweep if sweep["status"] in FINISHED else None

    return _wait(f"sweep {sweep_id} to finish", finished, workers)


def _last_val_acc(client, job_id: int) -> float:
    rows = client.get(f"/api/v1/jobs/{job_id}/metrics").get_json()["items"]
    return rows[-1]["val_acc"]


def _assert_one_terminal_job_per_trial(sessions, sweep_id: int, trials: int) -> None:
    with sessions() as session:
        job_ids = list(session.scalars(select(SweepTrial.job_id)
                                       .where(SweepTrial.sweep_id == sweep_id)))
        jobs = list(session.scalars(select(Job).where(Job.sweep_id == sweep_id)))
    assert len(job_ids) == trials and None not in job_ids
    assert sorted(job_ids) == sorted(j.id for j in jobs)  # job count == trial count
    assert all(j.status in JobStatus.FINISHED for j in jobs), [(j.id, j.status) for j in jobs]


def test_twelve_trials_on_two_workers_prune_losers_and_pick_the_best(client, sessions, worker):
    workers = [worker(), worker()]
    sweep = _submit(client, SWEEP)
    assert sweep["counts"]["total"] == 12 and sweep["status"] == "running"
    done = _wait_finished(client, sweep["id"], workers)

    assert done["status"] == "succeeded", done
    _assert_one_terminal_job_per_trial(sessions, sweep["id"], 12)
    trials = done["trials"]
    assert done["counts"]["succeeded"] + done["counts"]["pruned"] == 12, done["counts"]
    pruned = [t for t in trials if t["status"] == "pruned"]
    assert pruned, "the median rule stopped no trial"
    for trial in pruned:
        assert trial["model_id"] is None and trial["error"].startswith("pruned at epoch")
        assert 2 <= trial["epochs"] < 4  # metrics kept up to the epoch it was stopped at

    succeeded = [t for t in trials if t["status"] == "succeeded"]
    finals = {t["job_id"]: _last_val_acc(client, t["job_id"]) for t in succeeded}
    top = max(finals.values())
    first_top = min((t for t in succeeded if finals[t["job_id"]] == top),
                    key=lambda t: t["index"])
    assert done["best"]["job_id"] == done["best_job_id"] == first_top["job_id"]
    assert done["best"]["val_acc"] == top and done["best"]["model_id"] is not None

    again = _submit(client, SWEEP)  # same seed: same parameters, trial by trial
    assert [t["params"] for t in sorted(again["trials"], key=lambda t: t["index"])] == \
           [t["params"] for t in sorted(trials, key=lambda t: t["index"])]
    cancelled = client.post(f"/api/v1/sweeps/{again['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"


def test_every_strategy_and_pruner_runs_to_the_end_through_a_restarted_api(
        database_url, redis_url, sessions, worker):
    workers = [worker(), worker()]
    submitted = {s: _submit(_app(database_url, redis_url), _small(s)) for s in STRATEGY_PRUNERS}
    for strategy in ADAPTIVE:  # chosen as they start: the first two, the rest to be chosen
        assert [t["chosen"] for t in sorted(submitted[strategy]["trials"],
                                            key=lambda t: t["index"])] == \
               [True, True, False, False, False]
    restarted = _app(database_url, redis_url)  # nothing of the first app is needed any more
    for strategy, sweep in submitted.items():
        done = _wait_finished(restarted, sweep["id"], workers)
        total = done["counts"]["total"]
        assert done["status"] == "succeeded" and done["strategy"] == strategy, done
        assert done["counts"]["succeeded"] + done["counts"]["pruned"] == total, done["counts"]
        _assert_one_terminal_job_per_trial(sessions, sweep["id"], total)
        assert all(t["chosen"] and set(t["params"]) == set(done["request"]["space"])
                   for t in done["trials"])
        for trial in done["trials"]:
            if trial["status"] == "pruned":
                assert trial["error"].startswith("pruned at ") and "val_acc" in trial["error"]
        importances = restarted.get(f"/api/v1/sweeps/{sweep['id']}/importances").get_json()
        assert {i["param"] for i in importances["importances"]} <= set(done["request"]["space"])
    grid = _wait_finished(restarted, submitted["grid"]["id"], workers)
    assert sorted((t["params"]["train.optimizer.lr"], t["params"]["model.hidden.0"])
                  for t in grid["trials"]) == [(1e-4, 8), (1e-4, 24), (1e-2, 8), (1e-2, 24)]


@pytest.mark.parametrize("strategy", ["random", "tpe"])
def test_killed_worker_and_a_fresh_one_finish_every_trial_exactly_once(
        client, sessions, worker, strategy):
    """An up-front and an adaptive sweep: the killed trial resumes, the next trials are
    started (and, for tpe, chosen) by the processes that are left."""
    env = {"NNQ_REQUEUE_AFTER_SECONDS": "10"}
    victim = worker(lease_seconds=KILL_LEASE_S, env=env)
    survivor = worker(lease_seconds=KILL_LEASE_S, env=env)
    trials = KILL_TRIALS[strategy]
    sweep = _submit(client, {**SLOW_SWEEP, "strategy": strategy, "max_trials": trials,
                             **({"sampler_options": {"startup_trials": 2}}
                                if strategy == "tpe" else {})})
    pid = f":{victim.proc.pid}:"

    def victim_job():
        with sessions() as session:
            return session.scalar(select(Job.id).where(
                Job.sweep_id == sweep["id"], Job.status == "running", Job.epoch >= 1,
                Job.lease_owner.contains(pid)))

    killed_job = _wait("the victim to train a trial", victim_job, [victim, survivor])
    victim.kill()
    fresh = worker(lease_seconds=KILL_LEASE_S, env=env)  # a new scheduler: its reconciler
    done = _wait_finished(client, sweep["id"], [survivor, fresh])

    assert done["status"] == "succeeded", done
    assert done["counts"]["succeeded"] == done["counts"]["total"] == trials, done["counts"]
    _assert_one_terminal_job_per_trial(sessions, sweep["id"], trials)
    resumed = client.get(f"/api/v1/jobs/{killed_job}").get_json()
    assert resumed["status"] == "succeeded" and resumed["attempts"] >= 2
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == trials


@pytest.mark.parametrize("change,field", [
    ({"space": {"train.optimiser.lr": {"loguniform": [1e-4, 1e-1]}}}, "space.train.optimiser.lr"),
    ({"space": {"train.optimizer.lr": {"uniform": [0.1, 0.1]}}},
     "space.train.optimizer.lr.uniform"),
    ({"space": {"train.optimizer.lr": {"loguniform": [-1e-3, 1e-1]}}},
     "space.train.optimizer.lr.loguniform"),
    ({"max_trials": 10_000}, "max_trials"),
    ({"strategy": "cmaes", "space": {"model.hidden": {"choice": [[8], [16]]}}},
     "space.model.hidden.choice"),
    ({"pruner": "percentile", "pruner_options": {"percentile": 120}}, "pruner_options.percentile"),
    ({"metric": "test_acc"}, "metric"),
])
def test_bad_sweep_specs_are_4xx_naming_the_field(client, change, field):
    response = client.post("/api/v1/sweeps", json={**SWEEP, **change})
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)
    fields = [d["field"] for d in response.get_json()["error"]["details"]]
    assert field in fields, fields
    assert client.get("/api/v1/sweeps").get_json()["total"] == 0
