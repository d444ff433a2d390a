"""The worst cases generated input and operators found, kept as ordinary tests: each once was
a 500, an HTML page, a silently truncated body or a response the document did not describe.
Those that reach the database run on SQLite and PostgreSQL, so the two agree; those about
what gunicorn and the WSGI layer do before the app runs use one served API on SQLite."""

from __future__ import annotations

import http.client
import io
import json
import socket
from urllib.parse import urlsplit

import pytest

import nncore
from tests import support
from tests.service.served import served_api
from tests.service.test_bad_input import GOOD, assert_error

MIB = 1024 * 1024
LIMIT_BYTES = 16 * MIB
SWEEP = {"name": "s", "base": GOOD, "space": {"train.seed": {"grid": [1, 2]}}}
# Strings that str.isdigit() accepts: superscripts and other scripts' digits (int() even
# reads some of them, so "٣" would have named model 3); none is an ASCII model id.
UNICODE_DIGITS = ["%C2%B3", "%C2%B9%C2%B2", "%D9%A3", "%E2%91%A0", "%EF%BC%91"]


def test_a_non_ascii_digit_model_ref_is_422_on_every_model_route(client, trained):
    for ref in UNICODE_DIGITS:
        for method, path in [("GET", f"/api/v1/models/{ref}"),
                             ("GET", f"/api/v1/models/{ref}/state.npz"),
                             ("POST", f"/api/v1/models/{ref}/predict")]:
            r = client.open(path, method=method, json={"inputs": [[0.0] * 784]})
            error = assert_error(r, 422, "ref")
            assert error["details"][0]["field"] == "ref", (ref, path)
    assert client.get(f"/api/v1/models/{trained[0]}").status_code == 200


def test_an_unhashable_preset_is_422_naming_the_model(client):
    for preset in ({}, [], [1], {"a": 1}):
        spec = {**GOOD, "model": {"preset": preset}}
        assert_error(client.post("/api/v1/jobs", json=spec), 422, "model", "unknown preset")
        sweep = {**SWEEP, "base": spec}
        assert_error(client.post("/api/v1/sweeps", json=sweep), 422, "base.model")


@pytest.mark.parametrize("method,path,kwargs,field", [
    ("get", "/api/v1/jobs?na%00me=x", {}, "name"),
    ("get", "/api/v1/sweeps?status=a%00", {}, "status"),
    ("put", "/api/v1/models/aliases/a%00b", {"json": {"model_id": 1}}, "path"),
    ("get", "/api/v1/models/1%00", {}, "path"),
    ("get", "/api/v1/models/1/state.npz%00", {}, "path"),
    ("post", "/api/v1/jobs", {"json": GOOD, "headers": {"Idempotency-Key": "k\x00"}},
     "Idempotency-Key"),
    ("post", "/api/v1/sweeps", {"json": {**SWEEP, "space": {"train.seed\x00": {"grid": [1]}}}},
     "space"),
    ("post", "/api/v1/sweeps", {"json": SWEEP, "headers": {"Idempotency-Key": "\x00"}},
     "Idempotency-Key"),
])
def test_nul_characters_are_refused_everywhere_on_both_databases(client, method, path, kwargs,
                                                                  field):
    r = getattr(client, method)(path, **kwargs)
    error = assert_error(r, 422, "NUL")
    assert error["details"][0]["field"].startswith(field), error
    assert client.get("/api/v1/jobs").get_json()["total"] == 0


def test_a_nul_in_a_multipart_json_part_is_422_on_both_databases(client):
    """The spec of an imported model: SQLite would store the NUL, PostgreSQL would refuse."""
    spec = {**GOOD, "name": "imp\u0000ort"}
    net = nncore.build(GOOD["model"], (784,), 10, seed=1)
    parts = {"state": (io.BytesIO(nncore.state_to_bytes(net.state_dict())), "state.npz"),
             "spec": (io.BytesIO(json.dumps(spec).encode()), "spec.json")}
    r = client.post("/api/v1/models/import", data=parts, content_type="multipart/form-data")
    error = assert_error(r, 422, "spec.name", "NUL")
    assert error["details"][0]["field"] == "spec.name"
    assert client.get("/api/v1/models").get_json()["total"] == 0


def test_405_names_the_allowed_methods(client):
    for method, path, allowed in [("DELETE", "/api/v1/jobs", {"GET", "POST"}),
                                  ("TRACE", "/api/v1/health", {"GET"}),
                                  ("PUT", "/api/v1/jobs/1", {"GET"}),
                                  ("GET", "/api/v1/jobs/1/cancel", {"POST"})]:
        r = client.open(path, method=method)
        assert_error(r, 405)
        assert allowed <= {m.strip() for m in r.headers["Allow"].split(",")}, (path, r.headers)


def test_the_document_says_a_sweep_base_is_a_job_spec(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    base = doc["components"]["schemas"]["SweepRequest"]["properties"]["base"]
    assert base["$ref"] == "#/components/schemas/JobSpec"
    r = client.post("/api/v1/sweeps", json={**SWEEP, "base": {}})
    assert_error(r, 422, "base.data", "base.model")


def test_responses_link_created_ids_to_the_operations_they_open(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    links = paths["/api/v1/jobs"]["post"]["responses"]["202"]["links"]
    metrics = paths["/api/v1/jobs/{job_id}/metrics"]["get"]["operationId"]
    assert links[metrics]["parameters"] == {"job_id": "$response.body#/id"}
    listed = paths["/api/v1/models"]["get"]["responses"]["200"]["links"]
    predict = paths["/api/v1/models/{ref}/predict"]["post"]["operationId"]
    assert listed[predict]["parameters"] == {"ref": "$response.body#/items/0/id"}
    assert "Retry-After" in paths["/api/v1/jobs"]["get"]["responses"]["503"]["headers"]


# Over a real socket: what gunicorn and the WSGI layer do before the app runs (the same on
# every database, so one gunicorn on SQLite serves them all). ---------------------------------

@pytest.fixture(scope="module")
def served(redis_server, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("served")
    database_url = f"sqlite:///{workdir / 'nnq.db'}"
    support.migrate(database_url)
    redis_url = support.claim_redis_db(redis_server)
    env = {"NNQ_DATABASE_URL": database_url, "NNQ_BROKER_URL": redis_url}
    try:
        with served_api(workdir / "gunicorn.log", env) as url:
            yield urlsplit(url)
    finally:
        support.flush_redis_db(redis_url)


def chunked_post(address, path: str, chunks) -> tuple[int, dict, bytes]:
    """POST with Transfer-Encoding: chunked (no Content-Length); (status, headers, body)."""
    conn = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    try:
        conn.request("POST", path, body=iter(chunks), encode_chunked=True,
                     headers={"Content-Type": "application/json",
                              "Transfer-Encoding": "chunked"})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_a_chunked_body_over_the_limit_is_413_not_truncated(served):
    prefix = json.dumps(GOOD).encode()
    padding = [b" " * MIB] * (LIMIT_BYTES // MIB + 8)  # a valid JSON prefix, then 24 MiB
    status, headers, body = chunked_post(served, "/api/v1/jobs", [prefix, *padding])
    assert status == 413, body[:300]
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "request_entity_too_large"
    status, _, body = chunked_post(served, "/api/v1/jobs", [prefix[:10], prefix[10:]])
    assert status == 202, body[:300]
    status, _, body = chunked_post(served, "/api/v1/jobs", [b'{"data": ', b" " * MIB])
    assert status == 400 and b"malformed JSON" in body


def test_a_body_declared_over_the_limit_is_413_over_a_real_socket(served):
    conn = http.client.HTTPConnection(served.hostname, served.port, timeout=60)
    body = json.dumps(GOOD).encode() + b" " * (LIMIT_BYTES + MIB)
    try:
        conn.request("POST", "/api/v1/jobs", body=body,
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        status, answer = response.status, response.read()
    finally:
        conn.close()
    assert status == 413, answer[:300]
    assert json.loads(answer)["error"]["code"] == "request_entity_too_large"


def raw_request(address, request: bytes) -> tuple[str, dict, bytes]:
    """Send bytes as they are; (status line, headers, body) of the answer."""
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    return status, dict(line.split(": ", 1) for line in lines), body


@pytest.mark.parametrize("request_bytes,status", [
    (b"GET /api/v1/jobs?name=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /api/v1/jobs HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),
    (b"GET /api/v1/jobs HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400),
    (b"G@T /api/v1/jobs HTTP/1.1\r\nHost: x\r\n\r\n", 400),
])
def test_requests_gunicorn_refuses_get_the_json_error_shape(served, request_bytes, status):
    line, headers, body = raw_request(served, request_bytes)
    assert line.split(" ")[1] == str(status), line
    assert headers["Content-Type"] == "application/json"
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message", "details"} and error["message"]


def test_a_long_query_below_gunicorns_limit_reaches_the_app_and_names_the_field(served):
    line, _, body = raw_request(
        served, b"GET /api/v1/jobs?name=" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n"
                b"Connection: close\r\n\r\n")
    assert line.split(" ")[1] == "422", line
    assert "name" in json.loads(body)["error"]["message"]
