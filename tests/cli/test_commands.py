"""The `nnq` commands against a real API process, a real worker, Redis and the test DB."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from nnq.processes import free_port
from tests.cli.cli_helpers import nnq

pytestmark = pytest.mark.integration

TINY_SPEC = {
    "name": "cli-tiny",
    "data": {"dataset": "synthetic", "samples": 300, "val_fraction": 0.1},
    "model": {"preset": "mlp", "hidden": [16], "batchnorm": True, "init": "he"},
    "train": {"epochs": 2, "batch_size": 30, "optimizer": {"type": "adam", "lr": 0.01},
              "seed": 3, "dtype": "float32"},
    "device": "cpu",
}


def predicted_labels(stdout: str) -> list[int]:
    """The label column of `nnq predict`'s table (rows: sample, label, top probability)."""
    rows = re.findall(r"^\W*\d+\W+(\d)\W+[01]\.\d{4}\W*$", stdout, re.MULTILINE)
    return [int(label) for label in rows]


def write_spec(tmp_path, spec, name="spec.json"):
    path = tmp_path / name
    path.write_text(json.dumps(spec))
    return str(path)


@pytest.mark.timeout(300)
def test_submit_wait_then_list_and_predict(api_url, worker, tmp_path):
    worker()
    result = nnq(api_url, "submit", write_spec(tmp_path, TINY_SPEC), "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "metrics per epoch" in result.stdout
    assert "train_loss" in result.stdout and "test_acc" in result.stdout
    job_id = re.search(r"submitted job (\d+)", result.stdout).group(1)
    model_id = re.search(rf"job {job_id} succeeded; model (\d+)", result.stdout).group(1)

    jobs = nnq(api_url, "jobs")
    assert jobs.returncode == 0, jobs.stderr
    assert re.search(rf"\b{job_id}\b.*cli-tiny.*succeeded", jobs.stdout)

    models = nnq(api_url, "models")
    assert models.returncode == 0, models.stderr
    assert re.search(rf"\b{model_id}\b", models.stdout)

    one = nnq(api_url, "job", job_id)
    assert one.returncode == 0 and '"status": "succeeded"' in one.stdout

    image = (np.arange(28 * 28).reshape(28, 28) % 256).astype(np.uint8)
    Image.fromarray(image, mode="L").save(tmp_path / "sample.png")
    predicted = nnq(api_url, "predict", model_id, str(tmp_path / "sample.png"))
    assert predicted.returncode == 0, predicted.stdout + predicted.stderr
    assert len(predicted_labels(predicted.stdout)) == 1

    samples = np.random.default_rng(0).random((3, 784), dtype=np.float32)
    np.save(tmp_path / "samples.npy", samples, allow_pickle=False)
    from_npy = nnq(api_url, "predict", model_id, str(tmp_path / "samples.npy"))
    assert from_npy.returncode == 0, from_npy.stdout + from_npy.stderr
    assert "3 sample(s)" in from_npy.stdout

    (tmp_path / "samples.json").write_text(json.dumps({"inputs": samples.tolist()}))
    from_json = nnq(api_url, "predict", model_id, str(tmp_path / "samples.json"))
    assert from_json.returncode == 0, from_json.stderr
    labels = predicted_labels(from_npy.stdout)
    assert len(labels) == 3 and labels == predicted_labels(from_json.stdout)


def test_bad_spec_prints_the_field_and_fails(api_url, tmp_path):
    spec = json.loads(json.dumps(TINY_SPEC))
    spec["train"]["optimizer"]["lr"] = -0.1
    result = nnq(api_url, "submit", write_spec(tmp_path, spec))
    assert result.returncode != 0
    assert "train.optimizer.lr" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_unknown_job_and_model_are_reported_not_raised(api_url, tmp_path):
    job = nnq(api_url, "job", "999999")
    assert job.returncode == 1 and "Traceback" not in job.stderr
    assert "error:" in job.stderr
    predicted = nnq(api_url, "predict", "no-such-model", write_spec(tmp_path, {"inputs": []}))
    assert predicted.returncode == 1 and "Traceback" not in predicted.stderr


def test_unreadable_spec_file_is_a_clear_error(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    result = nnq("http://127.0.0.1:9", "submit", str(tmp_path / "broken.json"))
    assert result.returncode == 1
    assert "not valid JSON" in result.stderr and "Traceback" not in result.stderr


def test_unreachable_api_is_a_clear_error():
    url = f"http://127.0.0.1:{free_port()}"
    result = nnq(url, "jobs")
    assert result.returncode == 2
    assert "cannot reach the nnq API" in result.stderr and url in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(180)
def test_submit_wait_exits_non_zero_with_the_reason_of_a_failed_job(api_url, worker, tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    worker(env={"NNQ_DATA_DIR": str(empty)})
    spec = json.loads(json.dumps(TINY_SPEC))
    spec["data"] = {"dataset": "mnist", "val_fraction": 0.1}
    result = nnq(api_url, "submit", write_spec(tmp_path, spec), "--wait")
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"job \d+ failed: \S", result.stderr), result.stderr
    assert "Traceback" not in result.stderr
