"""Pruning through Optuna's pruners: the decisions and their reasons on replayed records, then
on epoch rows written through the store (both DBs)."""

from __future__ import annotations

import math

import pytest
from optuna.trial import TrialState

from service.db import Job
from service.sweeps import store
from service.sweeps.pruning import (
    decide,
    make_pruner,
    max_epochs,
    pruner_config,
    should_prune,
)
from service.sweeps.study import TrialRecord
from tests.sweeps.trials import run_trial

MEDIAN = {"type": "median", "warmup_epochs": 1, "min_trials": 2}
ASHA = {"type": "asha", "min_epochs": 1, "reduction_factor": 3}
HYPERBAND = {"type": "hyperband", "min_epochs": 1, "reduction_factor": 3}
FINAL = 9
# Hyperband brackets follow from the study name and the trial number; with the default name
# and 9 epochs at factor 3, trial 14 is in bracket 0 (rungs 1, 3, 9) and trial 12 in
# bracket 1 (rungs 3, 9), and 3 resp. 7 of trials 0..11 share their bracket.
BRACKET_0_TRIAL, BRACKET_1_TRIAL = 14, 12


def done(index: int, *values: float) -> TrialRecord:
    """A succeeded trial whose metric per epoch is ``values``."""
    return TrialRecord(index=index, state=TrialState.COMPLETE, value=values[-1],
                       curve=dict(enumerate(values, start=1)))


def running(index: int, *values: float) -> TrialRecord:
    return TrialRecord(index=index, state=TrialState.RUNNING,
                       curve=dict(enumerate(values, start=1)))


def ask(config, peers, me, final=FINAL):
    return decide(config, [*peers, me], me.index, final_epoch=final, epochs=final)


def test_median_waits_for_warmup_and_enough_succeeded_trials():
    peers = [done(0, 0.5, 0.8), done(1, 0.6, 0.9)]
    assert ask(MEDIAN, peers, running(2, 0.1)) is None  # epoch 1 is warm-up
    assert ask(MEDIAN, peers[:1], running(2, 0.1, 0.1)) is None  # one succeeded trial
    still_running = [done(0, 0.5, 0.8), running(1, 0.6, 0.9)]
    assert ask(MEDIAN, still_running, running(2, 0.1, 0.1)) is None  # only succeeded count
    reason = ask(MEDIAN, peers, running(2, 0.1, 0.1))
    assert reason.startswith("pruned at epoch 2 by the median rule")
    assert "val_acc 0.1000 (its best so far)" in reason and "median 0.8500 of 2" in reason


def test_median_compares_the_trials_best_value_so_far():
    peers = [done(0, 0.5, 0.8), done(1, 0.6, 0.9)]
    assert ask(MEDIAN, peers, running(2, 0.9, 0.2)) is None  # it reached 0.9 once
    even = [done(0, 0.5, 0.5), done(1, 0.5, 1.0)]  # median 0.75
    assert ask(MEDIAN, even, running(2, 0.5, 0.75)) is None  # at the median
    assert ask(MEDIAN, even, running(2, 0.5, 0.74)) is not None


def test_a_missing_metric_value_is_pruned_and_said_so():
    reason = ask(MEDIAN, [done(0, 0.5, 0.8), done(1, 0.6, 0.9)],
                 running(2, math.nan, math.nan))
    assert "val_acc none" in reason


def test_no_pruning_at_the_final_epoch_or_without_a_pruner():
    peers = [done(0, 0.5, 0.8), done(1, 0.6, 0.9)]
    assert ask(MEDIAN, peers, running(2, 0.1, 0.1), final=2) is None
    assert ask({"type": "none"}, peers, running(2, 0.1, 0.1)) is None
    assert make_pruner({"type": "none"}, FINAL) is None


def test_percentile_keeps_the_top_share():
    config = {"type": "percentile", "percentile": 25.0, "warmup_epochs": 0, "min_trials": 3}
    peers = [done(i, v) for i, v in enumerate([0.1, 0.2, 0.3, 0.4, 0.5])]
    reason = ask(config, peers, running(5, 0.35))
    assert "the top 25 % go on" in reason and "75th percentile 0.4000 of 5" in reason
    assert ask(config, peers, running(5, 0.41)) is None
    assert ask(config, peers, running(5, 0.1)) is not None


def test_asha_halves_at_rungs_only():
    peers = [done(0, 0.5, 0.5, 0.5), done(1, 0.9, 0.9, 0.9)]
    assert ask(ASHA, peers, running(2, 0.95, 0.95, 0.95)) is None
    assert ask(ASHA, peers, running(2, 0.95, 0.0)) is None  # epoch 2 is not a rung
    reason = ask(ASHA, peers, running(2, 0.95, 0.95, 0.3))
    assert reason.startswith("pruned at rung epoch 3 by ASHA, reduction factor 3: val_acc 0.3000")
    assert "top 1 of the 3 trial(s)" in reason and "cut-off 0.9000" in reason


def test_asha_keeps_the_top_third_of_a_rung():
    six = [done(i, v, v, v) for i, v in enumerate([0.1, 0.2, 0.3, 0.8, 0.9])]
    assert ask(ASHA, six, running(5, 0.85, 0.85, 0.85)) is None  # 6 at the rung: top 2 go on
    assert "top 2 of the 6" in ask(ASHA, six, running(5, 0.7, 0.7, 0.7))


def test_asha_with_fewer_than_eta_at_a_rung_lets_only_the_best_on():
    assert ask(ASHA, [done(0, 0.9)], running(1, 0.95)) is None
    assert "top 1 of the 2" in ask(ASHA, [done(0, 0.9)], running(1, 0.1))


def test_hyperband_prunes_within_the_trials_bracket_at_its_rungs():
    peers = [done(i, *[0.5 + 0.01 * i] * FINAL) for i in range(BRACKET_0_TRIAL)]
    reason = ask(HYPERBAND, peers, running(BRACKET_0_TRIAL, 0.1))
    assert reason.startswith("pruned at rung epoch 1 by Hyperband (bracket 0)")
    assert "top 1 of the 4 trial(s)" in reason  # trials 0, 5, 9 and itself
    late = peers[:BRACKET_1_TRIAL]
    assert ask(HYPERBAND, late, running(BRACKET_1_TRIAL, 0.1)) is None  # bracket 1: no rung 1
    assert ask(HYPERBAND, late, running(BRACKET_1_TRIAL, 0.1, 0.1)) is None
    reason = ask(HYPERBAND, late, running(BRACKET_1_TRIAL, 0.1, 0.1, 0.1))
    assert reason.startswith("pruned at rung epoch 3 by Hyperband (bracket 1)")
    assert "top 2 of the 8" in reason
    assert ask(HYPERBAND, late, running(BRACKET_1_TRIAL, 0.9, 0.9, 0.9)) is None


def test_pruner_config_fills_defaults_and_hyperband_reaches_the_last_epoch():
    assert pruner_config({"pruner": "median", "pruner_options": {"min_trials": 2}}) == {
        "type": "median", "warmup_epochs": 1, "min_trials": 2}
    assert pruner_config({"pruner": "asha"})["reduction_factor"] == 3
    assert pruner_config({"pruner": "percentile"})["percentile"] == 25.0
    assert pruner_config({})["type"] == "none"
    request = {"base": {"train": {"epochs": 4}}, "space": {}}
    assert max_epochs(request) == 4
    assert max_epochs({**request, "space": {"train.epochs": {"choice": [2, 12]}}}) == 12


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


def test_median_rule_reads_the_succeeded_trials_rows(sessions):
    sweep_id = _sweep(sessions, "median", warmup_epochs=1, min_trials=2)
    run_trial(sessions, sweep_id, 0, [0.5, 0.8, 0.85])
    run_trial(sessions, sweep_id, 1, [0.5, 0.99], outcome="failed")  # not a succeeded trial
    run_trial(sessions, sweep_id, 2, [0.5, 0.7])
    low = run_trial(sessions, sweep_id, 3, [0.4, 0.6], outcome="running")
    assert "below the median 0.7500 of 2 succeeded trial(s)" in _ask(sessions, low)
    high = run_trial(sessions, sweep_id, 4, [0.4, 0.76], outcome="running")
    assert _ask(sessions, high) is None
    lonely = run_trial(sessions, sweep_id, 5, [0.1, 0.1, 0.1], outcome="running")
    assert _ask(sessions, lonely) is None  # only trial 0 reached epoch 3
    early = run_trial(sessions, sweep_id, 6, [0.1], outcome="running")
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
    run_trial(sessions, sweep_id, 0, [0.9, 0.9, 0.9])
    low = run_trial(sessions, sweep_id, 1, [0.1, 0.1], outcome="running")
    reason = _ask(sessions, low)
    assert reason is not None and "val_acc 0.1000" in reason and "test" not in reason
