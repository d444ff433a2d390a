"""What the next morning reads: Optuna's importances name the parameter that orders the
metric, the history keeps the best so far, parallel coordinates list succeeded trials; the
figures are PNGs."""

from __future__ import annotations

import numpy as np

from service.sweeps import insights
from service.sweeps.plots import history_png, importances_png, parallel_png, sweep_png
from service.sweeps.ranking import TrialResult

SPACE = {"lr": {"loguniform": [1e-5, 1e-1]}, "noise": {"uniform": [0, 1]},
         "width": {"choice": [[8], [16]]}}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TRIALS = 30


def results(n: int = TRIALS) -> list[TrialResult]:
    """Succeeded trials whose val_acc grows with log10(lr); noise and width do nothing."""
    rng = np.random.default_rng(0)
    out = []
    for i, lr in enumerate(10 ** rng.uniform(-5, -1, size=n)):
        acc = float(np.log10(lr) / 10 + 0.6)
        out.append(TrialResult(index=i, status="succeeded", job_id=i + 1,
                               params={"lr": float(lr), "noise": float(rng.uniform()),
                                       "width": [8] if i % 2 else [16]},
                               curve=[{"epoch": 1, "val_acc": acc / 2}, {"epoch": 2, "val_acc": acc}]))
    out.append(TrialResult(index=n, status="pruned", job_id=n + 1, params=out[0].params,
                           curve=[{"epoch": 1, "val_acc": 0.99}]))
    out.append(TrialResult(index=n + 1, status="pending", params={}, chosen=False))
    return out


def test_importances_put_the_parameter_that_orders_the_metric_first():
    found = insights.importances(SPACE, results(), "val_acc")
    ranked = [item["param"] for item in found["importances"]]
    assert ranked[0] == "lr" and set(ranked) == set(SPACE)
    assert found["trials"] == TRIALS and found["evaluator"] == "PedAnovaImportanceEvaluator"
    assert abs(sum(item["importance"] for item in found["importances"]) - 1) < 1e-9
    assert found["importances"][0]["importance"] > 0.5
    assert insights.ordered_paths(SPACE, found)[0] == "lr"


def test_importances_wait_for_two_succeeded_trials():
    found = insights.importances(SPACE, results(1)[:1], "val_acc")
    assert found["importances"] == [] and "at least 2 succeeded trials; 1 so far" in found["note"]
    assert insights.ordered_paths(SPACE, found) == list(SPACE)


def test_history_keeps_the_best_so_far_of_succeeded_trials_by_index():
    points = insights.history(results(), "val_acc")
    assert [p["index"] for p in points] == list(range(TRIALS))  # pruned/pending left out
    values = [p["value"] for p in points]
    assert [p["best"] for p in points] == list(np.maximum.accumulate(values))


def test_parallel_coordinates_list_succeeded_trials_with_every_path():
    data = insights.parallel_coordinates(SPACE, results(), "val_acc")
    assert data["params"] == list(SPACE) and len(data["trials"]) == TRIALS
    assert data["trials"][1]["params"]["width"] == [8]


def test_figures_are_pngs_with_and_without_data():
    full, empty = results(), []
    found = insights.importances(SPACE, full, "val_acc")
    for png in (importances_png(found, "t"), importances_png({"note": "none"}),
                history_png(insights.history(full, "val_acc"), "val_acc"),
                history_png([], "val_acc"),
                parallel_png(SPACE, insights.parallel_coordinates(SPACE, full, "val_acc"),
                             "val_acc"),
                parallel_png(SPACE, {"params": list(SPACE), "trials": []}, "val_acc"),
                sweep_png(SPACE, full, "val_acc", paths=insights.ordered_paths(SPACE, found)),
                sweep_png(SPACE, empty, "val_acc")):
        assert png.startswith(PNG_MAGIC)
