"""Keeping the best epoch, early stopping, train_acc in eval mode, and a resumed run that
stays bit-exact with every training tool on."""

import numpy as np
import pytest

import nncore
from nncore import SpecError, TrainingRun
from nncore.training import best_epoch


def overfitting_job(epochs=10, **train) -> dict:
    """180 training samples, a wide MLP and a high rate: val_acc peaks at epoch 7 of 10
    while train_acc reaches 1.0 (seed 0)."""
    return {"data": {"dataset": "synthetic", "samples": 300, "val_fraction": 0.25},
            "model": {"preset": "mlp", "hidden": [256]},
            "train": {"epochs": epochs, "batch_size": 10, "seed": 0,
                      "optimizer": {"type": "adam", "lr": 0.003}, **train}}


def snapshots_per_epoch(run: TrainingRun) -> dict[int, dict]:
    """Fit, keeping the network's state as each epoch left it."""
    states = {}
    run.fit(on_epoch=lambda row, _record: states.update({row["epoch"]: run.network.state_dict()}))
    return states


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name, value in a.items():
        np.testing.assert_array_equal(value, b[name], err_msg=name)


def test_best_epoch_is_the_first_with_the_highest_val_acc():
    rows = [{"epoch": e, "val_acc": v} for e, v in enumerate([0.5, 0.7, 0.7, 0.6, 0.72], 1)]
    assert best_epoch(rows) == 5
    assert best_epoch(rows[:4]) == 2                       # a tie keeps the earlier epoch
    assert best_epoch(rows, min_delta=0.05) == 2           # 0.72 is not 0.05 better
    assert best_epoch([{"epoch": 1, "val_acc": None}]) is None


def test_keep_best_leaves_the_best_epochs_weights_and_numbers_on_an_overfit_run():
    run = TrainingRun.from_spec(overfitting_job(keep_best=True))
    states = snapshots_per_epoch(run)
    val = [row["val_acc"] for row in run.metrics]
    best = val.index(max(val)) + 1
    assert best == 7 < run.epoch == 10                     # the run overfits after epoch 7
    assert run.metrics[-1]["train_acc"] == 1.0 and val[-1] < val[best - 1]
    assert run.model_epoch == run.best_epoch == best
    assert_same_state(run.network.state_dict(), states[best])
    assert run.model_metrics() == run.metrics[best - 1]
    assert run.accuracy(run.dataset.x_test, run.dataset.t_test) == \
        run.model_metrics()["test_acc"]


def test_without_keep_best_the_last_epoch_is_the_model():
    run = TrainingRun.from_spec(overfitting_job())
    states = snapshots_per_epoch(run)
    assert run.best_epoch is None and run.model_epoch == 10
    assert_same_state(run.network.state_dict(), states[10])
    assert run.model_metrics() == run.metrics[-1]


def test_early_stopping_ends_patience_epochs_after_the_best():
    run = TrainingRun.from_spec(overfitting_job(early_stopping={"patience": 2}, keep_best=True))
    metrics = run.fit()
    assert [r["epoch"] for r in metrics] == list(range(1, 10))   # best 7, then 8 and 9
    assert run.stopped_early and run.best_epoch == 7 and run.model_epoch == 7
    assert run.fit() == metrics                                   # nothing left to train


def test_min_delta_makes_small_gains_count_as_no_gain():
    run = TrainingRun.from_spec(overfitting_job(early_stopping={"patience": 1,
                                                                "min_delta": 0.5}))
    run.fit()
    assert len(run.metrics) == 2 and run.best_epoch == 1


def test_epoch_selection_needs_validation_data():
    spec = overfitting_job(keep_best=True)
    spec["data"]["val_fraction"] = 0.0
    with pytest.raises(SpecError) as err:
        TrainingRun.from_spec(spec)
    assert err.value.path == "train" and "data.val_fraction" in err.value.message


def test_train_acc_is_the_eval_mode_accuracy_of_the_whole_training_set():
    spec = overfitting_job(epochs=2)
    spec["model"].update({"batchnorm": True, "dropout": 0.3})
    run = TrainingRun.from_spec(spec)
    seen = []

    def on_epoch(row, _record):
        data = run.dataset
        seen.append((row["train_acc"], run.network.accuracy(data.x_train, data.t_train),
                     run.network.accuracy(data.x_train[:50], data.t_train[:50])))

    run.fit(on_epoch=on_epoch)
    assert [reported for reported, _, _ in seen] == [whole for _, whole, _ in seen]

    spec["train"]["train_acc_samples"] = 50
    first_50 = TrainingRun.from_spec(spec)
    first_50.fit()
    assert [r["train_acc"] for r in first_50.metrics] == [part for _, _, part in seen]


def everything_on() -> dict:
    """Stops early after epoch 11 of 12 and keeps epoch 9 (seed 0)."""
    spec = overfitting_job(epochs=12, keep_best=True, early_stopping={"patience": 2},
                           weight_decay=0.001,
                           schedule={"type": "cosine", "warmup_epochs": 1, "min_lr": 1e-4},
                           augment={"shift": 2, "flip": True})
    spec["model"].update({"batchnorm": True, "dropout": 0.2})
    spec["train"]["batch_size"] = 30
    return spec


@pytest.mark.parametrize("hook,at", [("on_epoch", 2), ("on_iteration", 15)],
                         ids=["after epoch 2", "mid-epoch 3"])
def test_resume_is_bit_exact_with_every_training_tool_on(hook, at):
    spec = everything_on()
    uninterrupted = TrainingRun.from_spec(spec)
    saved = {}

    def on_epoch(row, _record):
        if hook == "on_epoch" and row["epoch"] == at:
            saved["state"] = nncore.state_to_bytes(uninterrupted.checkpoint())

    def on_iteration(progress):
        if hook == "on_iteration" and progress["iteration"] == at:
            saved["state"] = nncore.state_to_bytes(uninterrupted.checkpoint())

    assert uninterrupted.steps_per_epoch == 6
    uninterrupted.fit(on_iteration=on_iteration, on_epoch=on_epoch)
    assert uninterrupted.stopped_early and (uninterrupted.model_epoch, uninterrupted.epoch) == (9, 11)
    resumed = TrainingRun.from_spec(spec)
    resumed.restore(nncore.state_from_bytes(saved["state"]))
    resumed.fit()

    def timeless(rows):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]

    assert timeless(resumed.metrics) == timeless(uninterrupted.metrics)
    assert resumed.model_epoch == uninterrupted.model_epoch
    assert_same_state(resumed.network.state_dict(), uninterrupted.network.state_dict())
    assert_same_state(resumed.optimizer.state_dict(), uninterrupted.optimizer.state_dict())
    timings = ("metrics/seconds", "pos/elapsed")
    assert_same_state(*({k: v for k, v in run.checkpoint().items() if k not in timings}
                        for run in (resumed, uninterrupted)))


def test_a_checkpoint_after_a_new_best_carries_its_weights():
    run = TrainingRun.from_spec(overfitting_job(epochs=2, keep_best=True))
    run.fit()
    state = run.checkpoint()
    best = {k[len("best/"):]: v for k, v in state.items() if k.startswith("best/")}
    assert best.keys() == run.network.state_dict().keys()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in state.values())
