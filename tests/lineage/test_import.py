"""POST /models/import: tensors trained elsewhere stored as a model of the spec's network,
after checking every name, shape and dtype; a bad tensor is a 422 naming it and stores
nothing."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from sqlalchemy import func, select

import nncore
from nncore.modelfile import save_model
from service.db.models import Model, ModelLineage
from tests.lineage.conftest import MLP_SPEC, lineage, predict

X = nncore.load_dataset("synthetic", samples=200, seed=9).x_test[:32]


def _npz(state: dict) -> bytes:
    """An .npz as numpy writes it (object arrays pickled: the server must never load them)."""
    buffer = io.BytesIO()
    np.savez(buffer, **state)
    return buffer.getvalue()


def _import(client, state: bytes, spec) -> object:
    spec_text = spec if isinstance(spec, str) else json.dumps(spec)
    return client.post("/api/v1/models/import", content_type="multipart/form-data",
                       data={"state": (io.BytesIO(state), "state.npz"), "spec": spec_text})


def _stored(sessions) -> tuple[int, int]:
    with sessions() as session:
        return (session.scalar(select(func.count()).select_from(Model)),
                session.scalar(select(func.count()).select_from(ModelLineage)))


@pytest.fixture
def state(client, train) -> tuple[dict, dict]:
    """(spec, tensors) of a model trained by the service, downloaded as state.npz."""
    job = train(MLP_SPEC)
    data = client.get(f"/api/v1/models/{job['model_id']}/state.npz").data
    return job["spec"], nncore.state_from_bytes(data)


def test_export_state_then_import_gives_the_same_predictions(client, train):
    job = train(MLP_SPEC)
    state = client.get(f"/api/v1/models/{job['model_id']}/state.npz").data
    response = _import(client, state, MLP_SPEC)
    assert response.status_code == 201, response.get_json()
    imported = response.get_json()
    assert imported["job_id"] is None and imported["name"] == MLP_SPEC["name"]
    original = client.get(f"/api/v1/models/{job['model_id']}").get_json()
    assert [(t["name"], t["sha256"]) for t in imported["tensors"]] == [
        (t["name"], t["sha256"]) for t in original["tensors"]]
    assert np.array_equal(predict(client, imported["id"], X), predict(client, job["model_id"], X))

    record = lineage(client, imported["id"])
    assert record["source"] == "imported" and record["environment"] is None
    assert record["spec"]["train"]["seed"] == MLP_SPEC["train"]["seed"]


def test_a_model_file_from_python_m_nncore_imports_and_reproduces_identically(
        client, train, tmp_path):
    """Trained on a laptop with nncore, served and verified by nnq."""
    run = nncore.TrainingRun.from_spec(MLP_SPEC)
    run.fit()
    save_model(str(tmp_path / "model.npz"), run)
    response = _import(client, (tmp_path / "model.npz").read_bytes(), MLP_SPEC)
    assert response.status_code == 201, response.get_json()
    imported = response.get_json()
    assert imported["metrics"]["test_acc"] == run.metrics[-1]["test_acc"]
    assert imported["data_fingerprint"] == run.dataset.fingerprint
    np.testing.assert_array_equal(predict(client, imported["id"], X),
                                  np.asarray(run.network.predict_proba(X), np.float64))

    started = client.post(f"/api/v1/models/{imported['id']}/reproduce")
    assert started.status_code == 202, started.get_json()
    train.run(started.get_json()["job"]["id"])
    record = lineage(client, imported["id"])
    assert record["verdict"] == "identical"
    # nothing recorded where the tensors were trained: the verdict says so, and what it used
    [unrecorded] = record["reproductions"][0]["conditions"]
    assert unrecorded["condition"] == "environment" and unrecorded["original"] is None
    assert "threads" in unrecorded["reproduced"]


@pytest.mark.parametrize("change, field, words", [
    ("extra", "state.9.W", "unexpected"),
    ("missing", "state.1.running_var", "missing"),
    ("shape", "state.0.W", "shape [784, 15], expected [784, 16]"),
    ("dtype", "state.0.b", "dtype float64, expected float32"),
    ("nan", "state.4.W", "NaN"),
    ("pickle", "state.0.b", "dtype object"),
])
def test_a_wrong_or_extra_tensor_is_a_422_naming_it_and_stores_nothing(
        client, sessions, state, change, field, words):
    spec, tensors = state
    if change == "extra":
        tensors["9.W"] = np.zeros((2, 2), np.float32)
    elif change == "missing":
        del tensors["1.running_var"]
    elif change == "shape":
        tensors["0.W"] = tensors["0.W"][:, :15]
    elif change == "dtype":
        tensors["0.b"] = tensors["0.b"].astype(np.float64)
    elif change == "nan":
        tensors["4.W"] = np.full_like(tensors["4.W"], np.nan)
    else:
        tensors["0.b"] = np.array([object()] * len(tensors["0.b"]), dtype=object)
    before = _stored(sessions)
    response = _import(client, _npz(tensors), spec)
    assert response.status_code == 422
    details = response.get_json()["error"]["details"]
    assert any(d["field"] == field and words in d["message"] for d in details), details
    assert _stored(sessions) == before


@pytest.mark.parametrize("spec, state_bytes, field", [
    ("{not json", None, "spec"),
    ({**MLP_SPEC, "model": {"preset": "mlp", "hidden": [0]}}, None, "spec.model.hidden[0]"),
    (MLP_SPEC, b"not a zip archive", "state"),
])
def test_a_bad_spec_or_archive_is_a_422_naming_it(client, sessions, state, spec, state_bytes,
                                                  field):
    before = _stored(sessions)
    response = _import(client, state_bytes or _npz(state[1]), spec)
    assert response.status_code == 422
    assert field in [d["field"] for d in response.get_json()["error"]["details"]]
    assert _stored(sessions) == before


def test_import_needs_both_parts_as_multipart(client):
    response = client.post("/api/v1/models/import", content_type="multipart/form-data",
                           data={"spec": json.dumps(MLP_SPEC)})
    assert response.status_code == 422
    assert response.get_json()["error"]["details"][0]["field"] == "state"
    response = client.post("/api/v1/models/import", json=MLP_SPEC)
    assert response.status_code == 422 and "multipart" in response.get_json()["error"]["message"]
