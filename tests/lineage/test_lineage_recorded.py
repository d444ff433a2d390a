"""A worker records every model's lineage when its job ends: spec, seeds, data hashes,
environment, the job, sweep, trial and attempts (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import platform

import numpy as np

import nncore
from nncore.lineage import array_sha256
from tests.lineage.conftest import CONV_SPEC, MLP_SPEC, SYNTHETIC, TRAIN, lineage
from tests.nncore.test_data import write_idx_set

ARRAYS = ("x_train", "t_train", "x_val", "t_val", "x_test", "t_test")


def _rng(record: dict, use: str) -> dict:
    return next(rng for rng in record["seeds"]["rngs"] if rng["use"] == use)


def test_mlp_lineage_has_spec_seeds_data_hashes_environment_and_attempts(client, train):
    job = train(MLP_SPEC)
    model = client.get(f"/api/v1/models/{job['model_id']}").get_json()
    record = lineage(client, job["model_id"])

    assert record["source"] == "trained" and record["recorded"] is True
    assert record["spec"] == job["spec"]
    assert record["expanded_spec"]["model"] == {"layers": model["layers"]}
    assert record["expanded_spec"]["train"] == job["spec"]["train"]
    assert record["seeds"]["train.seed"] == TRAIN["seed"]
    assert record["seeds"]["data.seed"] == SYNTHETIC["seed"]
    assert _rng(record, "dropout")["used"] and _rng(record, "synthetic_data")["used"]
    assert not _rng(record, "augment")["used"]

    dataset = nncore.load_dataset("synthetic", samples=SYNTHETIC["samples"],
                                  seed=SYNTHETIC["seed"])
    data = record["data"]
    assert data["dataset"] == "synthetic" and data["files"] == []
    assert data["fingerprint"] == dataset.fingerprint == model["data_fingerprint"]
    for name in ARRAYS:
        array = getattr(dataset, name)
        assert data["arrays"][name] == {"sha256": array_sha256(array),
                                        "dtype": array.dtype.name, "shape": list(array.shape)}

    env = record["environment"]
    assert env["python"] == platform.python_version() and env["numpy"] == np.__version__
    assert env["nnq"] and env["backend"] == "numpy" and env["cuda"] is None
    assert env["blas"]["library"] and isinstance(env["blas"]["threads"], int)

    run = record["run"]
    assert run["job_id"] == job["id"] and run["sweep_id"] is None and run["trial_index"] is None
    assert [(a["attempt"], a["resumed_from_epoch"], a["outcome"]) for a in run["attempts"]] == [
        (1, 0, "succeeded")]
    assert run["attempts"][0]["host"] == platform.node()
    assert run["wall_seconds"] > 0 and 0 < run["train_seconds"] <= run["wall_seconds"]
    assert record["reproductions"] == [] and record["verdict"] is None


def test_convnet_lineage_and_its_expanded_spec_trains_the_same_network(client, train):
    job = train(CONV_SPEC)
    record = lineage(client, job["model_id"])
    layers = record["expanded_spec"]["model"]["layers"]
    assert [layer["type"] for layer in layers] == ["conv", "batchnorm", "relu", "maxpool",
                                                   "affine"]
    assert layers[3]["stride"] == 2  # filled in by the expansion
    assert record["data"]["arrays"]["x_train"]["shape"][1:] == [1, 28, 28]

    again = train(record["expanded_spec"])
    first = client.get(f"/api/v1/models/{job['model_id']}").get_json()["tensors"]
    second = client.get(f"/api/v1/models/{again['model_id']}").get_json()["tensors"]
    assert [(t["name"], t["sha256"]) for t in first] == [(t["name"], t["sha256"])
                                                          for t in second]


def test_sweep_trial_lineage_names_its_sweep_and_trial(client, train):
    request = {"name": "lineage-sweep", "base": MLP_SPEC, "strategy": "grid",
               "space": {"train.optimizer.lr": {"grid": [0.01, 0.003]}}, "parallelism": 2}
    sweep = client.post("/api/v1/sweeps", json=request)
    assert sweep.status_code == 202, sweep.get_json()
    sweep_id = sweep.get_json()["id"]
    jobs = client.get(f"/api/v1/jobs?sweep_id={sweep_id}").get_json()["items"]
    assert len(jobs) == 2
    recorded = {}
    for job in jobs:
        done = train.run(job["id"])
        record = lineage(client, done["model_id"])
        assert record["run"]["sweep_id"] == sweep_id and record["run"]["job_id"] == job["id"]
        recorded[record["run"]["trial_index"]] = (job["id"], record["spec"]["train"]
                                                  ["optimizer"]["lr"])
    trials = client.get(f"/api/v1/sweeps/{sweep_id}").get_json()["trials"]
    assert recorded == {t["index"]: (t["job_id"], t["params"]["train.optimizer.lr"])
                        for t in trials}
    assert sorted(lr for _, lr in recorded.values()) == [0.003, 0.01]


def test_idx_dataset_files_are_recorded_with_their_sha256(client, train, tmp_path,
                                                          monkeypatch):
    data_dir = tmp_path / "idx"
    write_idx_set(data_dir / "mnist", n_train=60, n_test=20)
    monkeypatch.setenv("NNQ_DATA_DIR", str(data_dir))
    job = train({**MLP_SPEC, "data": {"dataset": "mnist", "val_fraction": 0.2}})
    files = lineage(client, job["model_id"])["data"]["files"]
    on_disk = sorted((data_dir / "mnist").iterdir())
    assert sorted(f["name"] for f in files) == [p.name for p in on_disk]
    for f in files:
        raw = (data_dir / "mnist" / f["name"]).read_bytes()
        assert f["sha256"] == hashlib.sha256(raw).hexdigest() and f["bytes"] == len(raw)


def test_unknown_model_is_404_for_every_lineage_route(client):
    for method, route in (("get", "lineage"), ("post", "reproduce"), ("get", "model.onnx")):
        response = getattr(client, method)(f"/api/v1/models/999/{route}")
        assert response.status_code == 404, route
        assert "no model 999" in response.get_json()["error"]["message"]
    response = client.get("/api/v1/models/nosuchalias/lineage")
    assert response.status_code == 404
