"""Pruning decisions: the pure rules, then on epoch rows written through the store (both DBs)."""

from __future__ import annotations

import pytest

from service.db import Job
from service.sweeps import store
from service.sweeps.pruning import decide, is_rung, pruner_config, should_prune
from tests.sweeps.trials import run_trial

MEDIAN = {"type": "median", "warmup_epochs": 1, "min_trials": 2}
ASHA = {"type": "asha", "min_epochs": 1, "reduction_factor": 3}
FINAL = 9


def test_median_waits_for_warmup_and_enough_other_trials():
    assert decide(MEDIAN, 0.1, [0.8, 0.9], epoch=1, final_epoch=FINAL) is None  # warm-up
    assert decide(MEDIAN, 0.1, [0.8], epoch=2, final_epoch=FINAL) is None  # one other trial
    reason = decide(MEDIAN, 0.1, [0.8, 0.9], epoch=2, final_epoch=FINAL)
    assert "epoch 2" in reason and "median 0.8500" in reason and "val_acc 0.1000" in reason


def test_median_keeps_a_trial_at_or_above_the_median():
    assert decide(MEDIAN, 0.75, [0.5, 1.0], epoch=2, final_epoch=FINAL) is None
    assert decide(MEDIAN, 0.9, [0.8, 0.9, 0.95], epoch=3, final_epoch=FINAL) is None
    assert decide(MEDIAN, 0.89, [0.8, 0.9, 0.95], epoch=3, final_epoch=FINAL) is not None


def test_missing_values_rank_last_and_are_not_peers():
    assert decide(MEDIAN, None, [0.5, 0.6], epoch=2, final_epoch=FINAL) is not None
    assert decide(MEDIAN, 0.1, [0.5, None], epoch=2, final_epoch=FINAL) is None


def test_no_pruning_at_the_final_epoch_or_without_a_pruner():
    assert decide(MEDIAN, 0.1, [0.8, 0.9], epoch=FINAL, final_epoch=FINAL) is None
    assert decide({"type": "none"}, 0.1, [0.8, 0.9], epoch=2, final_epoch=FINAL) is None


def test_asha_rungs_are_min_epochs_times_powers_of_eta():
    assert [e for e in range(1, 30) if is_rung(e, 1, 3)] == [1, 3, 9, 27]
    assert [e for e in range(1, 30) if is_rung(e, 2, 2)] == [2, 4, 8, 16]


def test_asha_goes_on_while_fewer_than_eta_trials_reached_the_rung():
    assert decide(ASHA, 0.1, [0.9], epoch=1, final_epoch=FINAL) is None


def test_asha_keeps_only_the_top_third_of_a_rung():
    assert decide(ASHA, 0.95, [0.5, 0.9], epoch=3, final_epoch=FINAL) is None
    reason = decide(ASHA, 0.9, [0.5, 0.95], epoch=3, final_epoch=FINAL)
    assert "rung epoch 3" in reason and "top 1 of the 3" in reason
    six = [0.1, 0.2, 0.3, 0.8, 0.9]  # 6 trials at the rung: the top 2 go on
    assert decide(ASHA, 0.85, six, epoch=3, final_epoch=FINAL) is None
    assert decide(ASHA, 0.7, six, epoch=3, final_epoch=FINAL) is not None
    assert decide(ASHA, 0.0, six, epoch=2, final_epoch=FINAL) is None  # not a rung


def test_pruner_config_fills_defaults_from_the_stored_request():
    assert pruner_config({"pruner": "median", "pruner_options": {"min_trials": 2}}) == {
        "type": "median", "warmup_epochs": 1, "min_trials": 2}
    assert pruner_config({"pruner": "asha"})["reduction_factor"] == 3
    assert pruner_config({})["type"] == "none"


def _sweep(sessions, pruner: str, **options) -> int:
    request = {"name": f"prune-{pruner}",
               "base": {"data": {"dataset": "synthetic", "samples": 100},
                        "model": {"preset": "mlp", "hidden": [8]}, "train": {"epochs": 4}},
               "space": {"train.optimizer.lr": {"loguniform": [1e-4, 1e-1]}},
               "max_trials": 8, "seed": 1, "pruner": pruner, "pruner_options": options}
    with sessions() as session:
        return store.create_sweep(session, request)[0].id


def _ask(sessions, job_id: int) -> str | None:
    with sessions() as session:
        return should_prune(session, session.get(Job, job_id))


def test_median_rule_reads_sibling_rows_at_the_same_epoch(sessions):
    sweep_id = _sweep(sessions, "median", warmup_epochs=1, min_trials=2)
    run_trial(sessions, sweep_id, 0, [0.5, 0.8, 0.85])
    run_trial(sessions, sweep_id, 1, [0.5, 0.7], outcome="failed")
    low = run_trial(sessions, sweep_id, 2, [0.4, 0.6], outcome="running")
    assert "below the median 0.7500 of 2 other trial(s)" in _ask(sessions, low)
    high = run_trial(sessions, sweep_id, 3, [0.4, 0.76], outcome="running")
    assert _ask(sessions, high) is None
    lonely = run_trial(sessions, sweep_id, 4, [0.1, 0.1, 0.1], outcome="running")
    assert _ask(sessions, lonely) is None  # only trial 0 reached epoch 3
    early = run_trial(sessions, sweep_id, 5, [0.1], outcome="running")
    assert _ask(sessions, early) is None  # epoch 1 is warm-up


def test_asha_on_stored_rows(sessions):
    sweep_id = _sweep(sessions, "asha", min_epochs=1, reduction_factor=2)
    first = run_trial(sessions, sweep_id, 0, [0.3], outcome="running")
    assert _ask(sessions, first) is None  # alone at rung 1
    better = run_trial(sessions, sweep_id, 1, [0.6], outcome="running")
    assert _ask(sessions, better) is None  # top 1 of 2
    worse = run_trial(sessions, sweep_id, 2, [0.2], outcome="running")
    assert "top 1 of the 3" in _ask(sessions, worse)


def test_sweep_without_pruner_and_plain_jobs_never_prune(sessions):
    sweep_id = _sweep(sessions, "none")
    run_trial(sessions, sweep_id, 0, [0.9, 0.9])
    run_trial(sessions, sweep_id, 1, [0.9, 0.9])
    low = run_trial(sessions, sweep_id, 2, [0.1, 0.1], outcome="running")
    assert _ask(sessions, low) is None
    with sessions() as session:
        job = session.get(Job, low)
        job.sweep_id = None
        assert should_prune(session, job) is None


@pytest.mark.parametrize("pruner", ["median", "asha"])
def test_test_accuracy_never_decides(sessions, pruner):
    """The rows' test_acc differs from val_acc; the reason quotes val_acc only."""
    sweep_id = _sweep(sessions, pruner, **({"min_trials": 1} if pruner == "median"
                                           else {"reduction_factor": 2}))
    run_trial(sessions, sweep_id, 0, [0.9, 0.9, 0.9], outcome="running")
    low = run_trial(sessions, sweep_id, 1, [0.1, 0.1], outcome="running")
    reason = _ask(sessions, low)
    assert reason is not None and "val_acc 0.1000" in reason and "test" not in reason
