"""``python -m nncore``: trains a tiny spec end to end in a subprocess, as a user would."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import nncore
from nncore.modelfile import META_KEY, load_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = {
    "name": "cli-tiny",
    "data": {"dataset": "synthetic", "samples": 400, "val_fraction": 0.1},
    "model": {"preset": "mlp", "hidden": [32], "batchnorm": True, "dropout": 0.1},
    "train": {"epochs": 3, "batch_size": 50, "optimizer": {"type": "adam", "lr": 0.003},
              "seed": 5},
}


def nncore_cli(*args, cwd):
    env = dict(os.environ, COLUMNS="120", PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-m", "nncore", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def spec_file(tmp_path):
    def write(spec):
        path = tmp_path / "spec.json"
        path.write_text(json.dumps(spec))
        return str(path)
    return write


def test_train_prints_epoch_table_and_writes_a_loadable_model(tmp_path, spec_file):
    out = tmp_path / "model.npz"
    result = nncore_cli("train", spec_file(SPEC), "--out", str(out), "--epochs", "2",
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for header in ("metrics per epoch", "epoch", "train_loss", "train_acc", "val_acc", "test_acc",
                   "seconds"):
        assert header in result.stdout
    state = nncore.state_from_bytes(out.read_bytes())
    assert {"0.W", "1.running_mean", "1.running_var"} <= set(state) and META_KEY in state

    net, meta = load_model(str(out))
    assert len(meta["metrics"]) == 2                      # --epochs overrides the spec
    ds = nncore.load_dataset("synthetic", samples=400)
    assert net.accuracy(ds.x_test, ds.t_test) == meta["metrics"][-1]["test_acc"]
    rebuilt = nncore.build({"layers": meta["layers"]}, tuple(meta["input_shape"]),
                           meta["num_classes"], dtype=meta["dtype"])
    rebuilt.load_state_dict({k: v for k, v in state.items() if k != META_KEY})
    np.testing.assert_array_equal(rebuilt.predict(ds.x_test), net.predict(ds.x_test))

    evaluated = nncore_cli("eval", str(out), cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"{meta['metrics'][-1]['test_acc']:.4f}" in evaluated.stdout


@pytest.mark.parametrize("change,message", [
    ({"train": {"epochs": 0}}, "train.epochs"),
    ({"model": {"preset": "mlp", "hidden": [-1]}}, "model.hidden[0]"),
    ({"data": {"dataset": "cifar"}}, "data.dataset"),
])
def test_bad_spec_gives_a_clear_message_and_exit_code_one(tmp_path, spec_file, change, message):
    spec = {**SPEC, **change}
    result = nncore_cli("train", spec_file(spec), "--out", str(tmp_path / "m.npz"), cwd=tmp_path)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "m.npz").exists()


def test_missing_data_files_give_a_clear_message(tmp_path, spec_file):
    spec = {**SPEC, "data": {"dataset": "mnist"}}
    result = nncore_cli("train", spec_file(spec), "--out", str(tmp_path / "m.npz"),
                        "--data-dir", str(tmp_path / "empty"), cwd=tmp_path)
    assert result.returncode == 1
    assert "not found" in result.stderr and "Traceback" not in result.stderr


def test_divergence_is_reported_not_raised(tmp_path, spec_file):
    spec = {**SPEC, "model": {"preset": "mlp", "hidden": [32]},
            "train": {"epochs": 20, "weight_decay": 1.0, "optimizer": {"type": "sgd", "lr": 10}}}
    result = nncore_cli("train", spec_file(spec), "--out", str(tmp_path / "m.npz"), cwd=tmp_path)
    assert result.returncode == 1
    assert "loss became" in result.stderr and "Traceback" not in result.stderr


# Big enough matrices that OpenBLAS splits them across threads, so the thread count changes
# the summation order and with it the weights.
WIDE = {**SPEC, "name": "cli-wide",
        "data": {"dataset": "synthetic", "samples": 1200, "val_fraction": 0.1},
        "model": {"preset": "mlp", "hidden": [512, 512], "batchnorm": True, "dropout": 0.0},
        "train": {**SPEC["train"], "epochs": 1, "batch_size": 200, "dtype": "float32"}}


def trained_in_process(threads: int) -> dict:
    from threadpoolctl import threadpool_limits
    with threadpool_limits(threads):
        run = nncore.TrainingRun.from_spec(WIDE)
        run.fit()
    return {k: np.array(v) for k, v in run.network.state_dict().items()}


def test_train_uses_one_blas_thread_like_a_worker_so_the_weights_match(tmp_path, spec_file):
    out = tmp_path / "model.npz"
    env_threads = dict(os.environ, OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2")
    result = subprocess.run([sys.executable, "-m", "nncore", "train", spec_file(WIDE),
                             "--out", str(out)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env={**env_threads, "PYTHONPATH": REPO})
    assert result.returncode == 0, result.stderr
    state = nncore.state_from_bytes(out.read_bytes())
    one_thread, two_threads = trained_in_process(1), trained_in_process(2)
    assert any(not np.array_equal(one_thread[k], two_threads[k]) for k in one_thread), \
        "this BLAS gives the same weights at 1 and 2 threads: the test cannot tell them apart"
    for name, array in one_thread.items():
        np.testing.assert_array_equal(state[name], array, err_msg=name)
