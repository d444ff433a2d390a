"""Jobs trained the way a worker trains them, in this process: submitted over the API (the
Flask test client on the test's database and Redis), then run by ``workers.train.run_job``,
the plain function the Celery task wraps. Lineage, verdicts, export and import are read back
over the API."""

from __future__ import annotations

import io

import numpy as np
import pytest

from service import create_app

SYNTHETIC = {"dataset": "synthetic", "samples": 300, "seed": 2}
TRAIN = {"epochs": 2, "batch_size": 20, "optimizer": {"type": "adam", "lr": 0.01}, "seed": 5}
MLP_SPEC = {"name": "lineage-mlp", "data": SYNTHETIC, "train": TRAIN,
            "model": {"preset": "mlp", "hidden": [16, 8], "batchnorm": True, "dropout": 0.2}}
CONV_SPEC = {"name": "lineage-conv", "data": SYNTHETIC, "train": {**TRAIN, "epochs": 1},
             "model": {"layers": [
                 {"type": "conv", "filters": 3, "size": 3, "pad": 1}, {"type": "batchnorm"},
                 {"type": "relu"}, {"type": "maxpool", "size": 2},
                 {"type": "affine", "units": 10}]}}


@pytest.fixture
def worker_env(monkeypatch, database_url, redis_url):
    """What a worker process reads: the test's database and broker."""
    monkeypatch.setenv("NNQ_DATABASE_URL", database_url)
    monkeypatch.setenv("NNQ_BROKER_URL", redis_url)


@pytest.fixture
def app(database_url, redis_url, worker_env):
    return create_app({"NNQ_DATABASE_URL": database_url, "NNQ_BROKER_URL": redis_url,
                       "TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def train(client):
    """``train(spec) -> job``: submit over the API, run it as a worker does, return the job."""
    from workers.train import run_job

    def submit_and_run(spec: dict) -> dict:
        submitted = client.post("/api/v1/jobs", json=spec)
        assert submitted.status_code == 202, submitted.get_json()
        return run(submitted.get_json()["id"])

    def run(job_id: int) -> dict:
        run_job(job_id)
        job = client.get(f"/api/v1/jobs/{job_id}").get_json()
        assert job["status"] == "succeeded", job["error"]
        return job

    submit_and_run.run = run
    return submit_and_run


def lineage(client, model_id) -> dict:
    response = client.get(f"/api/v1/models/{model_id}/lineage")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def predict(client, model_id, x) -> np.ndarray:
    """Probabilities from the predict endpoint, for an .npy body of ``x``."""
    response = client.post(f"/api/v1/models/{model_id}/predict", data=npy(x),
                           content_type="application/octet-stream")
    assert response.status_code == 200, response.get_json()
    return np.asarray(response.get_json()["probabilities"], dtype=np.float64)
