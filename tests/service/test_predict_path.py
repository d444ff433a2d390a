"""The cheap predict path keeps its promises: a cached model is trusted only until its row is
checked again, an alias moved by someone else is followed at once, and the fast JSON parsing
accepts and refuses exactly what the standard library does (real DB, both engines)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import delete

import nncore
from service import inference
from service.db import Model
from service.db import model_store as store
from service.jsonio import FastJSONProvider
from tests.service.conftest import MODEL_SPEC, store_model

N = 3


class SteppedClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _predict(client, ref, x):
    return client.post(f"/api/v1/models/{ref}/predict", json={"inputs": x.tolist()})


def test_a_cached_model_is_served_until_its_row_is_checked_again(sessions, trained, monkeypatch):
    monkeypatch.setenv("NNQ_PREDICT_RECHECK_SECONDS", "30")
    model_id, _net = trained
    clock = SteppedClock()
    cache = inference.ModelCache(clock=clock)
    first = cache.get(sessions, model_id)
    assert cache.get(sessions, model_id) is first  # no rebuild
    with sessions() as session:
        session.execute(delete(Model).where(Model.id == model_id))
        session.commit()
    clock.now += 29
    assert cache.get(sessions, model_id) is first  # fresh: the row is not read
    clock.now += 2
    with pytest.raises(inference.ModelNotFound, match=str(model_id)):
        cache.get(sessions, model_id)
    with pytest.raises(inference.ModelNotFound):
        cache.get(sessions, model_id)


def test_a_checked_row_that_is_unchanged_keeps_the_loaded_network(sessions, trained,
                                                                   monkeypatch):
    monkeypatch.setenv("NNQ_PREDICT_RECHECK_SECONDS", "1")
    model_id, _net = trained
    clock = SteppedClock()
    cache = inference.ModelCache(clock=clock)
    first = cache.get(sessions, model_id)
    clock.now += 5
    assert cache.get(sessions, model_id) is first
    assert first.fresh_until == clock.now + 1


def test_an_alias_moved_elsewhere_is_followed_at_once(client, trained, sessions, synthetic):
    first_id, _first = trained
    second = nncore.build(MODEL_SPEC, (784,), 10, seed=5)
    second_id = store_model(sessions, second, synthetic)
    x = synthetic.x_test[:N]
    with sessions() as session:  # as another API process would
        store.set_alias(session, "live", first_id)
    r = _predict(client, "live", x)
    assert r.status_code == 200 and r.get_json()["model_id"] == first_id
    with sessions() as session:
        store.set_alias(session, "live", second_id)
    r = _predict(client, "live", x)
    assert r.get_json()["model_id"] == second_id
    got = np.asarray(r.get_json()["probabilities"], dtype=np.float32)
    assert np.array_equal(got, second.predict_proba(x))


def test_a_json_body_with_another_field_gets_the_field_named(client, trained):
    model_id, _net = trained
    r = client.post(f"/api/v1/models/{model_id}/predict",
                    json={"inputs": [[0.0] * 784], "mode": "fast"})
    assert r.status_code == 422
    assert [d["field"] for d in r.get_json()["error"]["details"]] == ["mode"]


def test_utf16_json_and_nul_escapes_are_still_read_and_refused(client, trained, synthetic):
    model_id, net = trained
    x = synthetic.x_test[:N]
    body = json.dumps({"inputs": x.tolist()}).encode("utf-16")
    r = client.post(f"/api/v1/models/{model_id}/predict", data=body,
                    content_type="application/json")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["labels"] == net.predict_proba(x).argmax(axis=1).tolist()
    r = client.post(f"/api/v1/models/{model_id}/predict",
                    data='{"inputs": [[0.5]], "na\\u0000me": 1}', content_type="application/json")
    assert r.status_code == 422 and "NUL" in r.get_json()["error"]["message"]


PREDICT = "/api/v1/models/1/predict"


@pytest.mark.parametrize("text", ['{"a": NaN}', "[1e400]", '"\\ud800"', '{"a": 1, "a": 2}',
                                  "[-0.0, 1E3, 0.1, 7]", '{"\\u00e9": [[1, 2.5]]}'])
def test_fast_parsing_agrees_with_the_standard_library_on_samples(app, text):
    with app.test_request_context(PREDICT, method="POST"):
        got = FastJSONProvider(app).loads(text.encode())
    assert json.dumps(got) == json.dumps(json.loads(text))


def test_a_huge_integer_among_samples_is_the_float_predict_makes_of_it(app):
    with app.test_request_context(PREDICT, method="POST"):
        got = FastJSONProvider(app).loads(b"[[12345678901234567890123]]")
    assert np.array_equal(np.asarray(got, dtype=np.float64),
                          np.asarray([[12345678901234567890123]], dtype=np.float64))


def test_bodies_other_than_samples_keep_the_standard_library(app):
    with app.test_request_context("/api/v1/jobs", method="POST"):
        assert FastJSONProvider(app).loads(b'{"n": 12345678901234567890123}') == {
            "n": 12345678901234567890123}


@pytest.mark.parametrize("text", ['{"a": 1,}', "[1, 2", "{'a': 1}", ""])
def test_fast_parsing_refuses_what_the_standard_library_refuses(app, text):
    with app.test_request_context(PREDICT, method="POST"), pytest.raises(ValueError):
        FastJSONProvider(app).loads(text.encode())
