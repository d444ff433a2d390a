"""Fixtures of the `nnq.Client` tests: the Flask app served over real HTTP by a werkzeug
server thread on a free port, on the test's database (SQLite and PostgreSQL) and Redis."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack

import pytest

from nnq import Client
from tests.support import served_app

TINY_SPEC = {
    "name": "<b>tiny</b>",
    "data": {"dataset": "synthetic", "samples": 300, "val_fraction": 0.1},
    "model": {"preset": "mlp", "hidden": [16], "batchnorm": True, "init": "he"},
    "train": {"epochs": 2, "batch_size": 30, "optimizer": {"type": "adam", "lr": 0.01},
              "seed": 3, "dtype": "float32"},
    "device": "cpu",
}
WAIT_S = 120


def spec(**changes) -> dict:
    """TINY_SPEC with top-level sections replaced or updated."""
    out = {key: (dict(value) if isinstance(value, dict) else value)
           for key, value in TINY_SPEC.items()}
    for key, value in changes.items():
        out[key] = value
    return out


@pytest.fixture
def serve() -> Callable[[dict], str]:
    """Factory: ``serve(config)`` serves ``create_app(config)`` on a free port; returns its
    base URL. Every server is shut down at teardown."""
    with ExitStack() as servers:
        yield lambda config: servers.enter_context(served_app(config))


@pytest.fixture
def api_url(serve, database_url, redis_url) -> str:
    return serve({"NNQ_DATABASE_URL": database_url, "NNQ_BROKER_URL": redis_url})


@pytest.fixture
def client(api_url):
    with Client(api_url) as client:
        yield client
