"""Every bad input gets a 4xx in the one error shape, naming the field; never a 5xx."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from service import create_app
from tests.service.conftest import npy, png

GOOD = {"name": "ok", "data": {"dataset": "synthetic", "samples": 200},
        "model": {"preset": "mlp", "hidden": [20]}, "train": {"epochs": 1}}


def with_(path: str, value) -> dict:
    """GOOD with one dotted field replaced."""
    spec = json.loads(json.dumps(GOOD))
    *parents, leaf = path.split(".")
    node = spec
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return spec


def assert_error(response, status: int, *names: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert set(error) == {"code", "message", "details"}
    for name in names:
        assert name in error["message"], error["message"]
    return error


SPEC_CASES = {
    "negative lr": (with_("train.optimizer", {"type": "adam", "lr": -0.1}), "train.optimizer.lr"),
    "zero epochs": (with_("train.epochs", 0), "train.epochs"),
    "too many epochs": (with_("train.epochs", 10_000), "train.epochs"),
    "zero batch size": (with_("train.batch_size", 0), "train.batch_size"),
    "unknown dataset": (with_("data.dataset", "imagenet"), "data.dataset"),
    "unknown preset": (with_("model", {"preset": "resnet50"}), "model: unknown preset"),
    "billion parameters": (with_("model.hidden", [40_000, 25_000]), "model: 1031675010 parameters; the limit"),
    "unknown top-level field": ({**GOOD, "priority": 1}, "priority"),
    "unknown nested field": (with_("train.optimizer", {"type": "sgd", "beta1": 0.9}),
                             "train.optimizer.beta1"),
    "unknown layer field": (with_("model", {"layers": [{"type": "affine", "units": 10,
                                                        "bias": False}]}), "model.layers[0].bias"),
    "unknown layer type": (with_("model", {"layers": [{"type": "lstm"}]}), "model.layers[0]"),
    "kernel larger than image": (with_("model", {"layers": [
        {"type": "conv", "filters": 4, "size": 3}, {"type": "maxpool", "size": 2},
        {"type": "conv", "filters": 4, "size": 20}, {"type": "affine", "units": 10}]}),
        "model.layers[2]"),
    "wrong number of outputs": (with_("model", {"layers": [{"type": "affine", "units": 7}]}),
                                "model.layers[0]"),
    "missing data": ({k: v for k, v in GOOD.items() if k != "data"}, "data"),
    "string for int": (with_("train.epochs", "many"), "train.epochs"),
    "negative dropout": (with_("model.dropout", -0.5), "model.dropout"),
    "unknown optimizer": (with_("train.optimizer", {"type": "lion"}), "train.optimizer"),
    "array body": ([], "body"),
}


@pytest.mark.parametrize("case", list(SPEC_CASES))
def test_bad_spec_is_422_naming_the_field(client, case):
    spec, field = SPEC_CASES[case]
    error = assert_error(client.post("/api/v1/jobs", json=spec), 422, field)
    assert error["code"] == "validation_error"
    path = field.split(":")[0]
    assert any(d["field"].startswith(path) for d in error["details"])
    assert client.get("/api/v1/jobs").get_json()["total"] == 0


def test_lr_message_reads_like_the_design(client):
    r = client.post("/api/v1/jobs", json=with_("train.optimizer", {"lr": -1}))
    assert_error(r, 422, "train.optimizer.lr: Input should be greater than 0")


def test_nan_in_a_spec_is_rejected(client):
    body = json.dumps(GOOD).replace('"epochs": 1', '"epochs": 1, "weight_decay": NaN')
    r = client.post("/api/v1/jobs", data=body, content_type="application/json")
    assert_error(r, 422, "train.weight_decay")


def test_malformed_json_is_400_naming_the_body(client):
    r = client.post("/api/v1/jobs", data='{"data": {', content_type="application/json")
    error = assert_error(r, 400, "body", "malformed JSON")
    assert "line 1" in error["message"]


def test_non_json_body_is_4xx_naming_the_body(client):
    r = client.post("/api/v1/jobs", data="dataset=mnist", content_type="text/plain")
    assert_error(r, 422, "body")


def test_bad_query_parameters_name_the_parameter(client):
    assert_error(client.get("/api/v1/jobs?limit=0"), 422, "limit")
    assert_error(client.get("/api/v1/jobs?status=sleeping"), 422, "status")
    assert_error(client.get("/api/v1/jobs?colour=red"), 422, "colour")


def test_unknown_route_method_and_huge_body_use_the_error_shape(client):
    assert_error(client.get("/api/v1/nothing"), 404)
    assert_error(client.delete("/api/v1/jobs"), 405)
    big = b"[" + b"0," * (9 * 1024 * 1024) + b"0]"
    assert_error(client.post("/api/v1/jobs", data=big, content_type="application/json"), 413)


def predict(client, ref, **kwargs):
    return client.post(f"/api/v1/models/{ref}/predict", **kwargs)


def test_predict_wrong_shape(client, trained):
    model_id, _ = trained
    r = predict(client, model_id, json={"inputs": [[0.5] * 783]})
    assert_error(r, 422, "inputs", "784")
    r = predict(client, model_id, data=npy(np.zeros((2, 3, 28, 28), np.float32)),
                content_type="application/x-npy")
    assert_error(r, 422, "body")
    assert_error(predict(client, model_id, json={"inputs": [[0.1, 0.2], [0.3]]}), 422, "inputs")


def test_predict_nan_and_inf(client, trained):
    model_id, _ = trained
    body = json.dumps({"inputs": [[0.0] * 783 + [float("nan")]]})
    r = predict(client, model_id, data=body, content_type="application/json")
    assert_error(r, 422, "inputs", "NaN")
    x = np.zeros((1, 784), np.float32)
    x[0, 5] = np.inf
    r = predict(client, model_id, data=npy(x), content_type="application/octet-stream")
    assert_error(r, 422, "body", "NaN")


def test_predict_too_many_samples(client, trained):
    model_id, _ = trained
    r = predict(client, model_id, data=npy(np.zeros((1001, 784), np.float32)),
                content_type="application/x-npy")
    assert_error(r, 422, "body", "1000")


def test_predict_unknown_model_or_alias(client):
    assert_error(predict(client, 12345, json={"inputs": [[0.0] * 784]}), 404, "ref", "12345")
    assert_error(predict(client, "production", json={"inputs": [[0.0] * 784]}), 404, "production")


def test_predict_garbage_bodies(client, trained):
    model_id, _ = trained
    assert_error(predict(client, model_id, json={"samples": []}), 422, "samples")
    assert_error(predict(client, model_id, json={"inputs": []}), 422, "inputs")
    assert_error(predict(client, model_id, json={"inputs": [["a"] * 784]}), 422, "inputs")
    assert_error(predict(client, model_id, data=b"not npy", content_type="application/x-npy"),
                 422, "body")
    pickled = np.array([{"a": 1}], dtype=object)
    buf = io.BytesIO()
    np.save(buf, pickled, allow_pickle=True)
    assert_error(predict(client, model_id, data=buf.getvalue(), content_type="application/x-npy"),
                 422, "body")
    assert_error(predict(client, model_id, data="x", content_type="text/plain"), 422, "body")
    assert_error(predict(client, model_id, data='{"inputs": [', content_type="application/json"),
                 400, "body")


def test_predict_bad_images(client, trained):
    model_id, _ = trained
    r = predict(client, model_id, data={"image": (png(np.zeros((32, 32))), "big.png")},
                content_type="multipart/form-data")
    assert_error(r, 422, "image", "28x28")
    r = predict(client, model_id, data={"image": (io.BytesIO(b"GIF89a..."), "x.png")},
                content_type="multipart/form-data")
    assert_error(r, 422, "image")
    r = predict(client, model_id, data={"picture": (png(np.zeros((28, 28))), "a.png")},
                content_type="multipart/form-data")
    assert_error(r, 422, "image")


def test_alias_to_unknown_model_or_bad_name(client, trained):
    assert_error(client.put("/api/v1/models/aliases/prod", json={"model_id": 999}), 404, "model_id")
    assert_error(client.put("/api/v1/models/aliases/42", json={"model_id": trained[0]}), 422, "name")
    assert_error(client.put("/api/v1/models/aliases/prod", json={"model": 1}), 422, "model")


def test_out_of_range_ids_and_offsets_are_4xx_on_every_database(client):
    huge = "9" * 30
    assert_error(client.get(f"/api/v1/jobs/{huge}"), 422, "job_id")
    assert_error(client.post(f"/api/v1/jobs/{huge}/cancel"), 422, "job_id")
    assert_error(client.get(f"/api/v1/jobs?offset={huge}"), 422, "offset")
    assert_error(client.get(f"/api/v1/models/{huge}"), 404, "ref")
    assert_error(client.post(f"/api/v1/models/{huge}/predict", json={"inputs": [[0.0] * 784]}),
                 404, "ref")
    assert_error(client.put("/api/v1/models/aliases/x", json={"model_id": 10**30}), 422, "model_id")
    assert_error(client.post("/api/v1/jobs", json=with_("data.train_limit", 10**30)), 422,
                 "data.train_limit")


def test_deeply_nested_json_is_400(client):
    body = "[" * 100_000 + "]" * 100_000
    assert_error(client.post("/api/v1/jobs", data=body, content_type="application/json"), 400,
                 "body")


def test_npy_header_claiming_a_huge_array_is_refused_before_allocating(client, trained):
    honest = npy(np.zeros((2, 784), np.float32))
    lying = honest.replace(b"(2, 784)", b"(9999999999, 784)", 1)
    r = predict(client, trained[0], data=lying, content_type="application/x-npy")
    assert_error(r, 422, "body", "header declares")
    structured = npy(np.zeros((2,), dtype=[("a", "f4")]))
    assert_error(predict(client, trained[0], data=structured, content_type="application/x-npy"),
                 422, "body", "numbers")


@pytest.mark.parametrize("method,path,body,field", [
    ("get", "/api/v1/jobs?name=a%00b", None, "name"),
    ("post", "/api/v1/jobs", {**GOOD, "name": "a\u0000b"}, "name"),
    ("post", "/api/v1/jobs", with_("model", {"layers": [{"type": "affine\u0000", "units": 10}]}),
     "model.layers[0].type"),
    ("post", "/api/v1/sweeps", {"name": "s\u0000", "base": GOOD,
                                "space": {"train.seed": {"grid": [1]}}}, "name"),
    ("get", "/api/v1/models/a%00b", None, "path"),
    ("post", "/api/v1/models/a%00b/predict", {"inputs": [[0.0] * 784]}, "path"),
])
def test_a_nul_character_anywhere_is_422_naming_where_not_a_5xx(client, method, path, body,
                                                                 field):
    response = getattr(client, method)(path, json=body) if body else getattr(client, method)(path)
    error = assert_error(response, 422, field, "NUL")
    assert error["details"][0]["field"] == field


def test_submissions_past_the_queued_jobs_quota_are_429_with_retry_after(database_url, redis_url):
    app = create_app({"NNQ_DATABASE_URL": database_url, "NNQ_BROKER_URL": redis_url,
                      "NNQ_MAX_QUEUED_PER_TOKEN": 2})
    client = app.test_client()
    kept = client.post("/api/v1/jobs", json=GOOD, headers={"Idempotency-Key": "kept"})
    assert kept.status_code == 202
    assert client.post("/api/v1/jobs", json=GOOD).status_code == 202
    r = client.post("/api/v1/jobs", json=GOOD)
    error = assert_error(r, 429, "2 jobs are queued", "NNQ_MAX_QUEUED_PER_TOKEN")
    assert error["code"] == "too_many_requests" and int(r.headers["Retry-After"]) > 0
    sweep = {"name": "s", "base": GOOD, "space": {"train.seed": {"grid": [1, 2]}}}
    assert_error(client.post("/api/v1/sweeps", json=sweep), 429, "would add 2")
    repeat = client.post("/api/v1/jobs", json=GOOD, headers={"Idempotency-Key": "kept"})
    assert repeat.status_code == 200 and repeat.get_json()["id"] == kept.get_json()["id"]
    assert client.post(f"/api/v1/jobs/{kept.get_json()['id']}/cancel").status_code == 200
    assert client.post("/api/v1/jobs", json=GOOD).status_code == 202
    assert client.get("/api/v1/jobs").get_json()["total"] == 3
