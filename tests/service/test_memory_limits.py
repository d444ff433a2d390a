"""A job whose estimated training memory (nncore.memory) is above NNQ_MAX_JOB_MEMORY_MB is
refused at submission with 422 naming train.batch_size and model, with the estimate and the
limit; nothing is queued (real app, real database on both engines, real Redis)."""

from __future__ import annotations

import json
from pathlib import Path

from service.db import Job

ROOT = Path(__file__).resolve().parents[2]
OPERATORS_JOB = {"name": "too-big", "data": {"dataset": "mnist"},
                 "model": {"preset": "deep_convnet"},
                 "train": {"epochs": 1, "batch_size": 10_000}}
SMALL = {"name": "small", "data": {"dataset": "synthetic", "samples": 400},
         "model": {"preset": "simple_convnet"}, "train": {"epochs": 1, "batch_size": 300}}


def _refused(response) -> dict:
    assert response.status_code == 422, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    fields = {d["field"] for d in error["details"]}
    assert {"train.batch_size", "model"} <= {f.split("base.")[-1] for f in fields}, fields
    assert "NNQ_MAX_JOB_MEMORY_MB" in error["message"] and "estimated" in error["message"]
    return error



def test_the_operators_convnet_at_batch_10000_is_refused_with_the_estimate(client, sessions):
    error = _refused(client.post("/api/v1/jobs", json=OPERATORS_JOB))
    assert "10000 samples per batch" in error["message"]
    assert "the limit NNQ_MAX_JOB_MEMORY_MB is 4096 MB" in error["message"]
    with sessions() as session:
        assert session.query(Job).count() == 0


def test_the_limit_is_the_setting(client, monkeypatch):
    assert client.post("/api/v1/jobs", json=SMALL).status_code == 202
    monkeypatch.setenv("NNQ_MAX_JOB_MEMORY_MB", "64")
    error = _refused(client.post("/api/v1/jobs", json=SMALL))
    assert "is 64 MB" in error["message"]


def test_a_sweep_whose_trials_are_too_big_is_refused(client):
    sweep = json.loads((ROOT / "examples" / "sweep-synthetic-quick.json").read_text())
    sweep["base"]["model"] = {"preset": "deep_convnet"}
    sweep["base"]["data"] = {"dataset": "mnist"}
    sweep["base"]["train"]["batch_size"] = 10_000
    response = client.post("/api/v1/sweeps", json=sweep)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert "NNQ_MAX_JOB_MEMORY_MB" in response.get_json()["error"]["message"]


def test_every_example_job_is_accepted_under_the_default_limit(client):
    for path in ["accuracy-deep-convnet.json", "accuracy-simple-convnet.json",
                 "accuracy-mlp.json", "fashion-convnet.json", "explicit-layers.json"]:
        spec = json.loads((ROOT / "examples" / path).read_text())
        response = client.post("/api/v1/jobs", json=spec)
        assert response.status_code == 202, (path, response.get_data(as_text=True))
