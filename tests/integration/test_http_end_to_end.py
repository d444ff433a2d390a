"""The whole path with real parts: HTTP submit -> Redis -> a real ``celery worker`` process ->
SQL store -> HTTP predict, on SQLite and PostgreSQL.

Predictions over HTTP must equal, bit for bit, the eval-mode numbers of the network rebuilt
from the downloaded state, and give exactly the worker's recorded test accuracy.
"""

from __future__ import annotations

import numpy as np
import pytest

import nncore
from nncore.training import EVAL_BATCH
from service import create_app
from tests.support import wait_until

pytestmark = pytest.mark.integration

WAIT_LIMIT_S = 300.0
POLL_S = 0.2
EPOCHS = 2
DATA = {"dataset": "synthetic", "samples": 600, "seed": 5}
TRAIN = {"epochs": EPOCHS, "batch_size": 50, "optimizer": {"type": "adam", "lr": 0.01}, "seed": 1}
SPECS = {
    "mlp": {"name": "e2e-bn-mlp", "data": DATA, "train": TRAIN,
            "model": {"preset": "mlp", "hidden": [32, 16], "batchnorm": True, "dropout": 0.1}},
    "conv": {"name": "e2e-bn-conv", "data": DATA, "train": TRAIN,
             "model": {"layers": [
                 {"type": "conv", "filters": 4, "size": 3, "pad": 1}, {"type": "batchnorm"},
                 {"type": "relu"}, {"type": "maxpool", "size": 2},
                 {"type": "affine", "units": 10}]}},
}


def wait_terminal(client, job_id: int, worker_proc) -> dict:
    """Poll until the job ends; a hung job fails the test with the worker's log."""
    def finished_job() -> dict | None:
        job = client.get(f"/api/v1/jobs/{job_id}").get_json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    return wait_until(f"job {job_id} to end", finished_job, [worker_proc],
                      timeout=WAIT_LIMIT_S, poll=POLL_S)


def batchnorm_indexes(layers: list[dict]) -> list[int]:
    return [i for i, layer in enumerate(layers) if layer["type"] == "batchnorm"]


@pytest.mark.parametrize("kind", list(SPECS))
def test_submit_train_store_and_predict_over_http(kind, database_url, redis_url, worker):
    proc = worker()
    client = create_app({"NNQ_DATABASE_URL": database_url, "NNQ_BROKER_URL": redis_url}).test_client()

    submitted = client.post("/api/v1/jobs", json=SPECS[kind])
    assert submitted.status_code == 202
    job = wait_terminal(client, submitted.get_json()["id"], proc)
    assert job["status"] == "succeeded", (job["error"], proc.log())
    assert job["attempts"] == 1 and job["model_id"] is not None
    assert job["progress"]["epoch"] == EPOCHS
    assert job["progress"]["iteration"] == job["progress"]["total_iterations"] > 0

    metrics = client.get(f"/api/v1/jobs/{job['id']}/metrics").get_json()["items"]
    assert [row["epoch"] for row in metrics] == list(range(1, EPOCHS + 1))
    assert all(0.0 <= row["test_acc"] <= 1.0 and row["train_loss"] > 0 for row in metrics)

    model = client.get(f"/api/v1/models/{job['model_id']}").get_json()
    assert model["job_id"] == job["id"]
    tensors = {t["name"]: t for t in model["tensors"]}
    bn = batchnorm_indexes(model["layers"])
    assert bn, model["layers"]
    for i in bn:
        for name in ("gamma", "beta"):
            assert tensors[f"{i}.{name}"]["role"] == "param"
        for name in ("running_mean", "running_var"):
            assert tensors[f"{i}.{name}"]["role"] == "buffer"

    state = nncore.state_from_bytes(client.get(f"/api/v1/models/{model['id']}/state.npz").data)
    assert set(state) == set(tensors)
    for i in bn:
        assert not np.array_equal(state[f"{i}.running_var"], np.ones_like(state[f"{i}.running_var"]))
    net = nncore.build({"layers": model["layers"]}, tuple(model["input_shape"]),
                       model["num_classes"], dtype=model["dtype"])
    net.load_state_dict(state)

    data = nncore.load_dataset(DATA["dataset"], samples=DATA["samples"], seed=DATA["seed"],
                               flatten=tuple(model["input_shape"]) == (784,))
    correct = 0
    for start in range(0, len(data.x_test), EVAL_BATCH):
        x = data.x_test[start:start + EVAL_BATCH]
        r = client.post(f"/api/v1/models/{model['id']}/predict", json={"inputs": x.tolist()})
        assert r.status_code == 200, r.get_data(as_text=True)
        got = np.asarray(r.get_json()["probabilities"], dtype=np.float32)
        want = net.predict_proba(x)
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
        correct += int((np.asarray(r.get_json()["labels"]) == data.t_test[start:start + EVAL_BATCH]).sum())
    assert correct / len(data.t_test) == metrics[-1]["test_acc"] == model["metrics"]["test_acc"]

    health = client.get("/api/v1/health").get_json()
    assert health["db"] and health["broker"] and health["workers"]
