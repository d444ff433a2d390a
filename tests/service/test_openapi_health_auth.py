"""The generated OpenAPI document, /health and /health/live, and the bearer token on mutating
routes (compared in constant time, never logged)."""

from __future__ import annotations

import logging
import subprocess

import pytest
from celery import Celery
from openapi_spec_validator import validate

from nnq.processes import LOCALHOST, free_port, redis_reachable, stop_process
from service import create_app
from service.api.worker_census import PROBE_TIMEOUT_S, UNSEEN_TTL_S
from service.auth import token_matches
from tests import support

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
    "/api/v1/health/live": {"get"},
}
SLACK_S = 5.0  # room for a loaded machine on top of the census's own bounds
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


def test_liveness_answers_without_database_or_broker(tmp_path):
    down = {"NNQ_DATABASE_URL": f"postgresql://postgres@{LOCALHOST}:{free_port()}/none",
            "NNQ_BROKER_URL": f"redis://{LOCALHOST}:{free_port()}/0"}
    client = create_app(down).test_client()
    live = client.get("/api/v1/health/live")
    assert live.status_code == 200 and live.get_json() == {"status": "ok"}
    ready = client.get("/api/v1/health")
    assert ready.status_code == 503 and int(ready.headers["Retry-After"]) > 0
    assert ready.get_json() == {"status": "down", "db": False, "broker": False,
                                "workers": False, "worker_count": 0}


def test_tokens_compare_by_content_only():
    assert token_matches("s3cret", "s3cret")
    assert not token_matches("s3creT", "s3cret")
    assert not token_matches("s3cret-and-more", "s3cret")
    assert not token_matches("", "s3cret")


def test_the_token_is_never_logged(database_url, redis_url, caplog):
    token, wrong = "tok-8c1f7e2a9b", "wrong-5d3a0c"
    app = create_app({"NNQ_DATABASE_URL": database_url, "NNQ_BROKER_URL": redis_url,
                      "NNQ_API_TOKEN": token})
    client = app.test_client()
    caplog.set_level(logging.DEBUG)
    for given in (token, wrong):
        headers = {"Authorization": f"Bearer {given}"}
        client.post("/api/v1/jobs", json=SPEC, headers=headers)
        client.post("/api/v1/jobs", data="{", content_type="application/json", headers=headers)
        client.post("/api/v1/jobs/999/cancel", headers=headers)
        client.put("/api/v1/models/aliases/x", json={"model_id": 1}, headers=headers)
    assert caplog.records, "nothing was logged at all; the check would prove nothing"
    assert token not in caplog.text and wrong not in caplog.text


def start_redis_on(port: int, workdir) -> subprocess.Popen:
    """redis-server with the append-only file on, as docker-compose.yml runs it."""
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", LOCALHOST,
                             "--appendonly", "yes", "--save", "", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    support.poll_until("redis-server", lambda: redis_reachable(f"redis://{LOCALHOST}:{port}"),
                       timeout=support.STARTUP_TIMEOUT_S)
    return proc


def workers_answering(broker_url: str) -> int:
    """Workers that answer a ping from a fresh client (its own connections)."""
    app = Celery(broker=broker_url, set_as_current=False)
    try:
        return len(app.control.ping(timeout=1.0) or [])
    finally:
        app.close()


@pytest.mark.integration
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_health_sees_workers_on_the_first_call_after_a_redis_restart(database_url, tmp_path):
    port = free_port()
    broker = f"redis://{LOCALHOST}:{port}/0"
    redis_proc = start_redis_on(port, tmp_path)
    worker = support.WorkerProcess({"NNQ_DATABASE_URL": database_url, "NNQ_BROKER_URL": broker},
                                   tmp_path / "worker.log")
    config = {"NNQ_DATABASE_URL": database_url, "NNQ_BROKER_URL": broker}
    try:
        worker.wait_ready()
        client = create_app(config).test_client()
        support.wait_until("health to see the worker",
                           lambda: client.get("/api/v1/health").get_json()["workers"], [worker],
                           timeout=support.STARTUP_TIMEOUT_S)

        stop_process(redis_proc)
        redis_proc = start_redis_on(port, tmp_path)
        support.wait_until("the worker to reconnect", lambda: workers_answering(broker),
                           [worker], timeout=support.STARTUP_TIMEOUT_S)
        first = create_app(config).test_client().get("/api/v1/health").get_json()
        assert first["broker"] and first["workers"] and first["worker_count"] == 1, first
        # The app that counted while Redis was away saw no worker then; it asks again soon.
        support.wait_until("the earlier app to see the worker again",
                           lambda: client.get("/api/v1/health").get_json()["workers"], [worker],
                           timeout=UNSEEN_TTL_S + PROBE_TIMEOUT_S + SLACK_S)
    finally:
        worker.stop()
        stop_process(redis_proc)
