"""Garbage sent to the lineage, reproduce, export and import routes gets a 4xx in the error
shape, never a 5xx, and stores nothing."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from sqlalchemy import func, select

from service.db.models import Job, Model
from tests.lineage.conftest import MLP_SPEC

ROUTES = [
    ("GET", "/api/v1/models/1/lineage"), ("GET", "/api/v1/models/x/lineage"),
    ("POST", "/api/v1/models/1/reproduce"), ("POST", "/api/v1/models/x/reproduce"),
    ("GET", "/api/v1/models/1/model.onnx"), ("POST", "/api/v1/models/import"),
]
BODIES = {
    "empty": {"data": b""},
    "json list": {"data": b"[1, 2]", "content_type": "application/json"},
    "bad utf-8": {"data": b"\xff\xfe{", "content_type": "application/json"},
    "binary": {"data": bytes(range(256)), "content_type": "application/octet-stream"},
    "form": {"data": {"image": "text"}, "content_type": "multipart/form-data"},
    "text parts": {"data": {"state": "text", "spec": "[]"},
                   "content_type": "multipart/form-data"},
}


def _zip_with(name: str, data: bytes) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, data)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize("method,path", ROUTES)
def test_garbage_never_gets_a_5xx(client, sessions, method, path):
    for name, kwargs in BODIES.items():
        response = client.open(path, method=method, **kwargs)
        assert 400 <= response.status_code < 500, (name, response.get_data(as_text=True))
        assert set(response.get_json()["error"]) == {"code", "message", "details"}
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0
        assert session.scalar(select(func.count()).select_from(Model)) == 0


@pytest.mark.parametrize("spec", [[], "null", {"data": {"dataset": "synthetic"}}])
def test_a_spec_that_is_not_a_job_spec_is_a_422_under_spec(client, spec):
    text = spec if isinstance(spec, str) else json.dumps(spec)
    response = client.post("/api/v1/models/import", content_type="multipart/form-data",
                           data={"state": (_zip_with("0.W.npy", b""), "s.npz"), "spec": text})
    assert response.status_code == 422
    assert all(d["field"].startswith("spec") for d in response.get_json()["error"]["details"])


def test_an_archive_member_that_is_not_npy_is_a_422_naming_it(client):
    response = client.post("/api/v1/models/import", content_type="multipart/form-data",
                           data={"state": (_zip_with("notes.txt", b"hello"), "s.npz"),
                                 "spec": json.dumps(MLP_SPEC)})
    assert response.status_code == 422
    assert response.get_json()["error"]["details"][0]["field"] == "state.notes.txt"
