"""A stored model answers only with tensors that match their rows and its layers.

Each test corrupts the real database (SQLite and PostgreSQL) the way a bad disk, a bad
restore or a hand-made UPDATE would, then asks for predictions, the state.npz download and
the ONNX export: each refuses with 409 naming the tensor, never numbers, never a 5xx.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from sqlalchemy import delete, select, update

from service import inference
from service.db import ModelTensor

ROUTES = ("predict", "state.npz", "model.onnx")
WEIGHT = "0.W"


def _ask(client, model_id: int, route: str, x: np.ndarray):
    url = f"/api/v1/models/{model_id}/{route}"
    if route == "predict":
        return client.post(url, json={"inputs": x.tolist()})
    return client.get(url)


def _row(session, model_id: int, name: str) -> ModelTensor:
    return session.scalars(select(ModelTensor).where(
        ModelTensor.model_id == model_id, ModelTensor.name == name)).one()


def _set(sessions, model_id: int, name: str, **values) -> None:
    with sessions() as session:
        session.execute(update(ModelTensor).where(
            ModelTensor.model_id == model_id, ModelTensor.name == name).values(**values))
        session.commit()


def _consistent(array: np.ndarray) -> dict:
    """Row values that agree with themselves (bytes, nbytes, sha256, shape, dtype)."""
    data = np.ascontiguousarray(array).tobytes()
    return {"data": data, "nbytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "shape": list(array.shape), "dtype": array.dtype.name}


def _flipped_byte(sessions, model_id):
    with sessions() as session:
        data = bytearray(_row(session, model_id, WEIGHT).data)
    data[7] ^= 0x40
    _set(sessions, model_id, WEIGHT, data=bytes(data))


def _truncated(sessions, model_id):
    with sessions() as session:
        data = bytes(_row(session, model_id, WEIGHT).data)
    _set(sessions, model_id, WEIGHT, data=data[:-16])


def _sha256_changed(sessions, model_id):
    _set(sessions, model_id, WEIGHT, sha256="0" * 64)


def _shape_changed(sessions, model_id):
    with sessions() as session:
        rows, cols = _row(session, model_id, WEIGHT).shape
    _set(sessions, model_id, WEIGHT, shape=[cols, rows])


def _dtype_changed(sessions, model_id):
    _set(sessions, model_id, WEIGHT, dtype="int32")


def _other_array_consistently(sessions, model_id):
    """New bytes with a matching sha256, nbytes and shape: only the layers can tell."""
    _set(sessions, model_id, WEIGHT, **_consistent(np.zeros((3, 5), np.float32)))


def _float64_consistently(sessions, model_id):
    with sessions() as session:
        row = _row(session, model_id, WEIGHT)
        array = np.frombuffer(bytes(row.data), np.float32).reshape(row.shape)
    _set(sessions, model_id, WEIGHT, **_consistent(array.astype(np.float64)))


def _row_deleted(sessions, model_id):
    with sessions() as session:
        session.execute(delete(ModelTensor).where(ModelTensor.model_id == model_id,
                                                  ModelTensor.name == WEIGHT))
        session.commit()


def _row_added(sessions, model_id):
    with sessions() as session:
        session.add(ModelTensor(model_id=model_id, name="99.W", role="param",
                                **_consistent(np.ones((2, 2), np.float32))))
        session.commit()


CORRUPTIONS = {
    "flipped byte": (_flipped_byte, WEIGHT, "sha256"),
    "truncated": (_truncated, WEIGHT, "truncated"),
    "sha256 changed": (_sha256_changed, WEIGHT, "sha256"),
    "shape changed": (_shape_changed, WEIGHT, "shape"),
    "dtype changed": (_dtype_changed, WEIGHT, "dtype"),
    "other array, consistent row": (_other_array_consistently, WEIGHT, "shape"),
    "float64, consistent row": (_float64_consistently, WEIGHT, "dtype"),
    "row deleted": (_row_deleted, WEIGHT, "missing"),
    "row added": (_row_added, "99.W", "unexpected"),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_a_corrupted_tensor_is_a_409_naming_it_on_every_route(client, sessions, trained,
                                                               synthetic, corruption):
    model_id, _net = trained
    corrupt, tensor, word = CORRUPTIONS[corruption]
    corrupt(sessions, model_id)
    x = synthetic.x_test[:2]
    for route in ROUTES:
        response = _ask(client, model_id, route, x)
        assert response.status_code == 409, (route, response.status_code, response.data[:300])
        error = response.get_json()["error"]
        assert error["code"] == "conflict"
        assert error["details"]["tensor"] == tensor, route
        assert error["details"]["model_id"] == model_id
        assert f"'{tensor}'" in error["message"] and word in error["message"], error["message"]
        assert "labels" not in response.get_json()


def test_a_model_that_failed_its_check_is_not_cached(client, sessions, trained, synthetic):
    model_id, _net = trained
    with sessions() as session:
        good = bytes(_row(session, model_id, WEIGHT).data)
    _flipped_byte(sessions, model_id)
    x = synthetic.x_test[:2]
    assert _ask(client, model_id, "predict", x).status_code == 409
    assert _ask(client, model_id, "predict", x).status_code == 409
    _set(sessions, model_id, WEIGHT, data=good)
    assert _ask(client, model_id, "predict", x).status_code == 200


def test_intact_models_still_answer_on_every_route(client, trained, synthetic):
    model_id, net = trained
    x = synthetic.x_test[:2]
    for route in ROUTES:
        response = _ask(client, model_id, route, x)
        assert response.status_code == 200, (route, response.data[:300])
    served = _ask(client, model_id, "predict", x).get_json()["probabilities"]
    np.testing.assert_allclose(served, net.predict_proba(x), rtol=1e-6)


def test_the_recheck_does_not_reread_tensors_a_loaded_model_keeps_its_verified_copy(
        client, sessions, trained, synthetic, monkeypatch):
    """What holds (documented in ModelCache): NNQ_PREDICT_RECHECK_SECONDS re-reads the model
    row, not its tensors, so a tensor corrupted after the load is not seen by predict while
    the entry is cached; the answers come from the copy verified at load. The download and
    the export read the rows each time and refuse; once the entry is dropped, so does predict."""
    monkeypatch.setenv("NNQ_PREDICT_RECHECK_SECONDS", "0")
    model_id, _net = trained
    x = synthetic.x_test[:2]
    before = _ask(client, model_id, "predict", x).get_json()["probabilities"]
    _flipped_byte(sessions, model_id)
    after = _ask(client, model_id, "predict", x)
    assert after.status_code == 200 and after.get_json()["probabilities"] == before
    assert _ask(client, model_id, "state.npz", x).status_code == 409
    assert _ask(client, model_id, "model.onnx", x).status_code == 409
    inference.CACHE.forget(client.application.extensions["nnq"]["sessions"], model_id)
    assert _ask(client, model_id, "predict", x).status_code == 409
