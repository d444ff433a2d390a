"""Ranking: the model's epoch (else the last), best first; no metric last; best is a succeeded trial."""

from __future__ import annotations

from service.sweeps.ranking import TrialResult, best, counts, rank


def trial(index, status, *val_accs, **params):
    curve = [{"epoch": e + 1, "val_acc": v, "test_acc": 0.99} for e, v in enumerate(val_accs)]
    return TrialResult(index=index, params=params, status=status, curve=curve)


def test_rank_uses_the_last_epoch_and_puts_trials_without_metrics_last():
    trials = [trial(0, "pending"), trial(1, "succeeded", 0.9, 0.5), trial(2, "pruned", 0.6),
              trial(3, "running", 0.3, 0.7), trial(4, "failed")]
    assert [t.index for t in rank(trials, "val_acc")] == [3, 2, 1, 0, 4]
    assert trials[1].as_dict()["val_acc"] == 0.5 and trials[1].epochs == 2
    assert trials[1].as_dict()["chosen"] is True


def test_a_trial_with_a_model_scores_by_the_epoch_its_model_holds():
    # keep_best stored epoch 1 (val 0.9) of trial 0; trial 1 kept its last epoch (0.85)
    kept = trial(0, "succeeded", 0.9, 0.5)
    kept.model_metrics = {"epoch": 1, "val_acc": 0.9, "test_acc": 0.88}
    last = trial(1, "succeeded", 0.8, 0.85)
    assert best([kept, last], "val_acc") is kept
    assert [t.index for t in rank([last, kept], "val_acc")] == [0, 1]
    assert kept.as_dict()["val_acc"] == 0.9 and kept.as_dict()["test_acc"] == 0.88


def test_best_is_the_highest_succeeded_trial_never_by_test_accuracy():
    trials = [trial(0, "succeeded", 0.8), trial(1, "pruned", 0.95), trial(2, "succeeded", 0.85)]
    trials[0].curve[-1]["test_acc"] = 1.0
    assert best(trials, "val_acc").index == 2
    assert best([trial(0, "running", 0.9)], "val_acc") is None


def test_counts_cover_every_status():
    c = counts([trial(0, "pending"), trial(1, "pruned"), trial(2, "pruned")])
    assert c["pending"] == 1 and c["pruned"] == 2 and c["succeeded"] == 0 and c["total"] == 3
