"""The app on a fresh migrated database (SQLite and PostgreSQL) with a real Redis broker,
and a model stored through the job store the way a worker stores one."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import nncore
from service import create_app
from service.db.jobs import claim_job, create_job, finish_job

OWNER = "test-owner"
LEASE_S = 60
MODEL_SPEC = {"preset": "mlp", "hidden": [32, 16], "batchnorm": True, "dropout": 0.2}
TRAIN_STEPS = 5
BATCH = 50


@pytest.fixture
def app(database_url, redis_url):
    return create_app({"NNQ_DATABASE_URL": database_url, "NNQ_BROKER_URL": redis_url,
                       "TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def synthetic():
    return nncore.load_dataset("synthetic", samples=400, seed=3)


def store_model(sessions, net, dataset, spec: dict | None = None) -> int:
    """Create, claim and finish a job with ``net`` as its model; returns the model id."""
    with sessions() as session:
        job, _ = create_job(session, spec or {"name": "stored", "model": MODEL_SPEC},
                            name="stored")
        assert claim_job(session, job.id, OWNER, LEASE_S) is not None
        model = finish_job(session, job.id, OWNER, net, {"test_acc": 0.5}, dataset.fingerprint)
        return model.id


@pytest.fixture
def trained(sessions, synthetic):
    """(model id, network): a BatchNorm+Dropout MLP trained a few steps, stored via the store."""
    net = nncore.build(MODEL_SPEC, synthetic.input_shape, synthetic.num_classes, seed=7)
    opt = nncore.make_optimizer({"type": "adam", "lr": 0.01})
    for step in range(TRAIN_STEPS):
        batch = slice(step * BATCH, (step + 1) * BATCH)
        opt.update(net.params, net.gradient(synthetic.x_train[batch], synthetic.t_train[batch]))
    assert not np.allclose(net.buffers["1.running_mean"], 0.0)
    return store_model(sessions, net, synthetic), net


def npy(array) -> bytes:
    """An .npy request body, written without pickle."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def png(pixels) -> io.BytesIO:
    """A grayscale PNG upload of a uint8 pixel array."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buf, format="PNG")
    buf.seek(0)
    return buf
