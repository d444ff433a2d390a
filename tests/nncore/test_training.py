"""TrainingRun: shuffled epochs, determinism, bit-exact resume, divergence, cancel, learning."""

import dataclasses

import numpy as np
import pytest

import nncore
from nncore import Cancelled, DivergenceError, SpecError, TrainingRun


def job(samples=400, epochs=3, batch_size=64, hidden=(32,), batchnorm=True, dropout=0.2,
        optimizer=None, **train):
    """A tiny synthetic job spec; 400 samples give 288 training rows, not a batch multiple."""
    return {
        "name": "tiny",
        "data": {"dataset": "synthetic", "samples": samples, "val_fraction": 0.1},
        "model": {"preset": "mlp", "hidden": list(hidden), "batchnorm": batchnorm,
                  "dropout": dropout},
        "train": {"epochs": epochs, "batch_size": batch_size, "seed": 3,
                  "optimizer": optimizer or {"type": "adam", "lr": 0.003}, **train},
    }


def params_of(run):
    return run.network.state_dict()


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_every_training_sample_is_seen_once_per_epoch():
    run = TrainingRun.from_spec(job(epochs=2))
    row_index = {row.tobytes(): i for i, row in enumerate(run.dataset.x_train)}
    assert len(row_index) == len(run.dataset.x_train) == 288
    seen, sizes = [], []
    original = run.network.gradient

    def recording_gradient(x, t):
        seen.extend(row_index[row.tobytes()] for row in np.asarray(x))
        sizes.append(len(x))
        return original(x, t)

    run.network.gradient = recording_gradient
    run.fit()
    epoch1, epoch2 = seen[:288], seen[288:]
    assert sorted(epoch1) == sorted(epoch2) == list(range(288))
    assert epoch1 != epoch2                                   # reshuffled each epoch
    assert sizes == [64, 64, 64, 64, 32] * 2                  # the partial batch is used


def test_progress_and_epoch_callbacks_follow_the_contract():
    progress, rows = [], []
    run = TrainingRun.from_spec(job(epochs=2))
    metrics = run.fit(on_iteration=progress.append,
                      on_epoch=lambda row, _record: rows.append(row))
    assert progress[0] == {"epoch": 1, "iteration": 1, "total_iterations": 10}
    assert progress[-1] == {"epoch": 2, "iteration": 10, "total_iterations": 10}
    assert [p["iteration"] for p in progress] == list(range(1, 11))
    assert rows == metrics == run.metrics and run.epoch == 2
    assert set(rows[0]) == {"epoch", "train_loss", "train_acc", "val_acc", "test_acc", "seconds"}
    assert [r["epoch"] for r in rows] == [1, 2]
    for r in rows:
        assert all(isinstance(r[k], float) for k in r if k != "epoch")
        assert 0.0 <= r["train_acc"] <= 1.0 and r["seconds"] >= 0.0


def test_same_spec_and_seed_give_bit_identical_parameters():
    a, b = TrainingRun.from_spec(job()), TrainingRun.from_spec(job())
    a.fit()
    b.fit()
    assert_same_state(params_of(a), params_of(b))
    assert [r["val_acc"] for r in a.metrics] == [r["val_acc"] for r in b.metrics]
    c = TrainingRun.from_spec(job(seed=4))
    c.fit()
    assert not np.array_equal(params_of(a)["0.W"], params_of(c)["0.W"])


def test_resume_after_epoch_one_of_three_is_bit_identical_with_batchnorm_and_dropout():
    spec = job(epochs=3, weight_decay=0.01)
    uninterrupted = TrainingRun.from_spec(spec)
    saved = {}

    def on_epoch(metrics, _record):
        if metrics["epoch"] == 1:
            saved["state"] = nncore.state_to_bytes(uninterrupted.checkpoint())

    uninterrupted.fit(on_epoch=on_epoch)
    resumed = TrainingRun.from_spec(spec)
    resumed.restore(nncore.state_from_bytes(saved["state"]))
    assert resumed.epoch == 1 and len(resumed.metrics) == 1
    metrics = resumed.fit()
    assert_same_state(params_of(uninterrupted), params_of(resumed))
    assert any(name.endswith("running_var") for name in params_of(resumed))
    assert_same_state(uninterrupted.optimizer.state_dict(), resumed.optimizer.state_dict())
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in metrics]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"}
                     for r in uninterrupted.metrics]


def test_resume_from_the_middle_of_an_epoch_is_bit_identical():
    spec = job(epochs=2)
    uninterrupted = TrainingRun.from_spec(spec)
    saved = {}

    def on_iteration(progress):
        if progress["iteration"] == 7:                 # epoch 2, step 2 of 5
            saved["state"] = nncore.state_to_bytes(uninterrupted.checkpoint())

    uninterrupted.fit(on_iteration=on_iteration)
    resumed = TrainingRun.from_spec(spec)
    resumed.restore(nncore.state_from_bytes(saved["state"]))
    steps = []
    resumed.fit(on_iteration=steps.append)
    assert [s["iteration"] for s in steps] == [8, 9, 10]
    assert_same_state(params_of(uninterrupted), params_of(resumed))
    assert resumed.metrics[1]["train_loss"] == uninterrupted.metrics[1]["train_loss"]


def test_checkpoint_holds_only_plain_arrays():
    run = TrainingRun.from_spec(job(epochs=1))
    run.fit()
    state = run.checkpoint()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in state.values())
    assert {"pos/epoch", "pos/iteration", "metrics/val_acc"} <= set(state)
    assert any(k.startswith("rng/net/") for k in state)
    assert any(k.startswith("rng/shuffle/") for k in state)
    assert any(k.startswith("opt/") for k in state)


def test_poisoned_data_raises_divergence_naming_epoch_and_iteration():
    clean = TrainingRun.from_spec(job(epochs=2, dropout=0.0))
    x_train = clean.dataset.x_train.copy()  # the loaded dataset is shared and read-only
    x_train[:, 0] = np.nan
    run = TrainingRun(clean.network, clean.optimizer,
                      dataclasses.replace(clean.dataset, x_train=x_train), clean.config)
    with pytest.raises(DivergenceError, match="epoch 1, iteration 1"):
        run.fit()


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
def test_huge_learning_rate_raises_divergence():
    # With weight decay the step multiplies each weight by (1 - lr * wd): it blows up.
    spec = job(epochs=20, batchnorm=False, dropout=0.0, weight_decay=1.0,
               optimizer={"type": "sgd", "lr": 10.0})
    with pytest.raises(DivergenceError, match="loss became (nan|inf)"):
        TrainingRun.from_spec(spec).fit()


def test_should_stop_cancels_within_one_iteration():
    run = TrainingRun.from_spec(job(epochs=3))
    calls = []

    def should_stop():
        calls.append(run.iteration)
        return len(calls) > 6

    with pytest.raises(Cancelled, match="epoch 2"):
        run.fit(should_stop=should_stop)
    assert run.iteration == 6 and len(calls) == 7


def test_small_mlp_learns_synthetic_data():
    run = TrainingRun.from_spec(job(samples=600, epochs=6, hidden=(64,), dropout=0.0))
    metrics = run.fit()
    assert metrics[-1]["val_acc"] > 0.4                 # chance is 0.1
    assert metrics[-1]["train_loss"] < metrics[0]["train_loss"]


def test_convnet_spec_gets_image_shaped_inputs():
    spec = job(epochs=1, samples=200)
    spec["model"] = {"layers": [{"type": "conv", "filters": 4, "size": 3},
                                {"type": "relu"}, {"type": "maxpool", "size": 2},
                                {"type": "affine", "units": 10}]}
    run = TrainingRun.from_spec(spec)
    assert run.dataset.input_shape == (1, 28, 28)
    assert run.fit()[0]["epoch"] == 1


@pytest.mark.parametrize("train,path", [({"epochs": 0}, "train.epochs"),
                                        ({"batch_size": "big"}, "train.batch_size"),
                                        ({"dtype": "float16"}, "train.dtype"),
                                        ({"optimizer": {"type": "lion"}}, "train.optimizer")])
def test_bad_train_section_raises_spec_error_naming_the_field(train, path):
    spec = job()
    spec["train"].update(train)
    with pytest.raises(SpecError) as err:
        TrainingRun.from_spec(spec)
    assert err.value.path == path


def test_bad_model_spec_error_path_is_prefixed_with_model():
    spec = job()
    spec["model"]["hidden"] = [0]
    with pytest.raises(SpecError) as err:
        TrainingRun.from_spec(spec)
    assert err.value.path.startswith("model.hidden")


def test_null_train_limit_means_no_limit_and_other_nulls_are_refused():
    spec = job(epochs=1)
    spec["data"].update({"train_limit": None})
    run = TrainingRun.from_spec(spec)
    assert len(run.dataset.x_val) == 32 and len(run.dataset.x_train) == 288
    spec["data"]["train_limit"] = 100
    assert len(TrainingRun.from_spec(spec).dataset.x_train) == 100
    spec["data"].update({"val_fraction": None, "seed": None})
    with pytest.raises(SpecError) as err:
        TrainingRun.from_spec(spec)
    assert [path for path, _ in err.value.problems] == ["data.val_fraction", "data.seed"]
