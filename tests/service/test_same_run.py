"""The same JSON means the same run everywhere: every example spec, read the way
``python -m nncore train`` reads it and the way ``nnq submit`` -> API -> worker reads it,
gives the same data, layers, training settings and device."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import nncore
from workers.train import _parse as worker_parse

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
JOB_EXAMPLES = sorted(p for p in EXAMPLES.rglob("*.json")
                      if "base" not in json.loads(p.read_text()))
SWEEP_EXAMPLES = sorted(p for p in EXAMPLES.rglob("*.json") if "base" in json.loads(p.read_text()))


def test_there_are_examples_of_both_kinds():
    assert len(JOB_EXAMPLES) >= 5 and len(SWEEP_EXAMPLES) >= 3


def assert_same_run(local: nncore.JobSpec, served: nncore.JobSpec) -> None:
    assert served.document() == local.document()
    assert served.layers == local.layers
    assert served.expansion.input_shape == local.expansion.input_shape
    assert served.train.model_dump() == local.train.model_dump()
    assert served.data.model_dump() == local.data.model_dump()
    assert served.device == local.device


@pytest.mark.parametrize("path", JOB_EXAMPLES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_an_example_job_is_the_same_run_locally_and_through_the_service(client, path):
    raw = json.loads(path.read_text())
    local = nncore.parse_spec(raw)  # what TrainingRun.from_spec does with the file's JSON
    response = client.post("/api/v1/jobs", json=raw)
    assert response.status_code == 202, response.get_json()
    served = worker_parse(response.get_json()["spec"])
    assert_same_run(local, served)
    assert served.train.epochs == raw["train"]["epochs"]


def test_defaults_are_the_same_locally_and_through_the_service(client):
    raw = {"data": {"dataset": "synthetic"}, "model": {"preset": "mlp"}}
    response = client.post("/api/v1/jobs", json=raw)
    assert_same_run(nncore.parse_spec(raw), worker_parse(response.get_json()["spec"]))


@pytest.mark.parametrize("path", SWEEP_EXAMPLES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_trial_of_an_example_sweep_is_its_base_with_the_params_set(client, path):
    raw = json.loads(path.read_text())
    if raw.get("strategy", "random") == "random":
        raw["max_trials"] = min(raw.get("max_trials", 4), 4)
    response = client.post("/api/v1/sweeps", json=raw)
    assert response.status_code == 202, response.get_json()
    for trial in response.get_json()["trials"]:
        if trial["job_id"] is None:  # beyond parallelism: no job yet
            continue
        job = client.get(f"/api/v1/jobs/{trial['job_id']}").get_json()
        served = worker_parse(job["spec"])
        local = dict(json.loads(json.dumps(raw["base"])), name=job["spec"]["name"])
        for dotted, value in trial["params"].items():
            *parents, leaf = dotted.split(".")
            node = local
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = value
        assert_same_run(nncore.parse_spec(local), served)


def test_a_synthetic_example_trains_bit_for_bit_the_same_both_ways(client):
    raw = json.loads((EXAMPLES / "synthetic-tiny.json").read_text())
    local = nncore.TrainingRun.from_spec(raw)
    stored = client.post("/api/v1/jobs", json=raw).get_json()["spec"]
    served = nncore.TrainingRun.from_spec(worker_parse(stored))
    assert served.total_iterations == local.total_iterations
    local.fit()
    served.fit()
    assert [r["epoch"] for r in served.metrics] == list(range(1, raw["train"]["epochs"] + 1))
    def timeless(rows):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]

    assert timeless(served.metrics) == timeless(local.metrics)
    for name, array in local.network.state_dict().items():
        np.testing.assert_array_equal(served.network.state_dict()[name], array)
