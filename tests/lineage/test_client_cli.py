"""`nnq.Client` and the `nnq model/reproduce/export/import` commands against the API served
over real HTTP; jobs run in this process as a worker runs them."""

from __future__ import annotations

import json
import re

import numpy as np
import onnxruntime
import pytest

import nncore
from nnq import Client, resources
from tests.cli.cli_helpers import nnq
from tests.lineage.conftest import MLP_SPEC
from tests.support import served_app

X = nncore.load_dataset("synthetic", samples=200, seed=9).x_test[:40]
MIRRORS = {
    resources.Lineage: "LineageOut", resources.Reproduction: "ReproductionOut",
    resources.RunLineage: "RunLineage", resources.AttemptRecord: "AttemptRecord",
    resources.TensorDifference: "TensorDifference",
    resources.ConditionDifference: "ConditionDifference", resources.OnnxInfo: "OnnxInfo",
}


@pytest.fixture(params=["sqlite"])
def database_url(request, tmp_path):
    """SQLite only: the client and the commands speak HTTP, the store is tested elsewhere."""
    from tests.support import migrate

    url = f"sqlite:///{tmp_path / 'nnq.db'}"
    migrate(url)
    return url


@pytest.fixture
def api_url(database_url, redis_url, worker_env):
    with served_app({"NNQ_DATABASE_URL": database_url, "NNQ_BROKER_URL": redis_url}) as url:
        yield url


@pytest.fixture
def api(api_url):
    with Client(api_url) as client:
        yield client


def _trained(api: Client) -> int:
    from workers.train import run_job

    job = api.submit(MLP_SPEC)
    run_job(job.id)
    return job.refresh().model_id


def test_resources_have_exactly_the_served_schemas_properties(api):
    schemas = api.transport.get("/openapi.json")["components"]["schemas"]
    for cls, name in MIRRORS.items():
        assert set(cls.model_fields) == set(schemas[name]["properties"]), name


def test_client_reproduces_and_reads_the_verdict(api):
    from workers.train import run_job

    model_id = _trained(api)
    reproduction = api.reproduce(model_id)
    assert reproduction.verdict == "pending" and not reproduction.finished
    run_job(reproduction.job_id)
    assert reproduction.refresh().verdict == "identical" and reproduction.finished
    lineage = api.lineage(reproduction.model_id)
    assert lineage.verdict == "identical" and lineage.reproductions[0].id == reproduction.id
    assert lineage.run.attempts[0].outcome == "succeeded"


def test_export_and_import_commands_round_trip(api, api_url, tmp_path):
    model_id = _trained(api)
    onnx_path = tmp_path / "model.onnx"
    exported = nnq(api_url, "export", str(model_id), "-o", str(onnx_path))
    assert exported.returncode == 0, exported.stderr
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    [probabilities] = session.run(None, {"input": X})
    _, served = api.predict(model_id, X)
    assert np.abs(probabilities - served).max() <= 1e-5

    state_path, spec_path = tmp_path / "state.npz", tmp_path / "spec.json"
    state_path.write_bytes(nncore.state_to_bytes(api.download_state(model_id)))
    spec_path.write_text(json.dumps(MLP_SPEC))
    imported = nnq(api_url, "import", str(state_path), "--spec", str(spec_path))
    assert imported.returncode == 0, imported.stderr
    new_id = int(re.search(r"imported model (\d+)", imported.stdout).group(1))
    np.testing.assert_array_equal(api.predict(new_id, X)[1], served)

    shown = nnq(api_url, "model", str(new_id))
    assert shown.returncode == 0 and "imported" in shown.stdout
    assert "input 'input' ('batch', 784) float32" in shown.stdout

    extra = {**api.download_state(model_id), "9.W": np.zeros(3, np.float32)}
    state_path.write_bytes(nncore.state_to_bytes(extra))
    refused = nnq(api_url, "import", str(state_path), "--spec", str(spec_path))
    assert refused.returncode == 1 and "state.9.W: unexpected" in refused.stderr
