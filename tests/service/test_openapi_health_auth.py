"""The generated OpenAPI document, /health, and the bearer token on mutating routes."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from nnq.processes import free_port
from service import create_app

ROUTES = {
    "/api/v1/jobs": {"get", "post"},
    "/api/v1/jobs/{job_id}": {"get"},
    "/api/v1/jobs/{job_id}/metrics": {"get"},
    "/api/v1/jobs/{job_id}/curves.png": {"get"},
    "/api/v1/jobs/{job_id}/cancel": {"post"},
    "/api/v1/models": {"get"},
    "/api/v1/models/{ref}": {"get"},
    "/api/v1/models/{ref}/state.npz": {"get"},
    "/api/v1/models/aliases/{name}": {"put"},
    "/api/v1/models/{ref}/predict": {"post"},
    "/api/v1/health": {"get"},
}
SPEC = {"data": {"dataset": "synthetic", "samples": 100}, "model": {"preset": "mlp", "hidden": [8]}}


def test_openapi_document_is_valid_and_has_every_route(client):
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    doc = r.get_json()
    validate(doc)
    for path, methods in ROUTES.items():
        assert methods <= set(doc["paths"][path]), path


def test_openapi_document_comes_from_the_validating_models(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    submit = doc["paths"]["/api/v1/jobs"]["post"]
    assert submit["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/JobSpec")
    assert schemas["JobSpec"]["additionalProperties"] is False
    assert {"data", "model", "train", "device"} <= set(schemas["JobSpec"]["properties"])
    assert schemas["MlpSpec"]["properties"]["dropout"]["exclusiveMaximum"] == 1.0
    error = submit["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
    assert error.endswith("/ErrorResponse")
    body = doc["paths"]["/api/v1/models/{ref}/predict"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-npy", "application/octet-stream",
            "multipart/form-data"} <= set(body)
    assert body["application/json"]["schema"]["$ref"].endswith("/PredictIn")
    assert "PredictIn" in schemas
    assert {"id", "status", "progress", "attempts", "error", "model_id", "spec"} <= set(
        schemas["JobOut"]["properties"])


def test_health_reports_db_broker_and_no_worker(client):
    r = client.get("/api/v1/health")
    assert r.status_code == 200
    assert r.get_json() == {"status": "degraded", "db": True, "broker": True, "workers": False,
                            "worker_count": 0}


def test_health_with_broker_down_is_still_200(database_url):
    app = create_app({"NNQ_DATABASE_URL": database_url,
                      "NNQ_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"})
    r = app.test_client().get("/api/v1/health")
    assert r.status_code == 200
    assert r.get_json()["db"] is True and r.get_json()["broker"] is False


@pytest.fixture
def guarded(database_url, redis_url):
    app = create_app({"NNQ_DATABASE_URL": database_url, "NNQ_BROKER_URL": redis_url,
                      "NNQ_API_TOKEN": "s3cret"})
    return app.test_client()


def test_token_is_required_for_mutating_requests(guarded):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
        r = guarded.post("/api/v1/jobs", json=SPEC, headers=headers)
        assert r.status_code == 401 and r.get_json()["error"]["code"] == "unauthorized"
    assert guarded.put("/api/v1/models/aliases/x", json={"model_id": 1}).status_code == 401
    ok = guarded.post("/api/v1/jobs", json=SPEC, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 202
    assert guarded.get("/api/v1/jobs").get_json()["total"] == 1
    assert guarded.get("/api/v1/health").status_code == 200
