"""Garbage sent to every route gets a 4xx in the error shape, never a 5xx or an HTML page."""

from __future__ import annotations

import pytest

ROUTES = [
    ("POST", "/api/v1/jobs"), ("GET", "/api/v1/jobs"), ("GET", "/api/v1/jobs/1"),
    ("GET", "/api/v1/jobs/1/metrics"), ("GET", "/api/v1/jobs/1/curves.png"),
    ("POST", "/api/v1/jobs/1/cancel"), ("GET", "/api/v1/models"), ("GET", "/api/v1/models/x"),
    ("GET", "/api/v1/models/1/state.npz"), ("PUT", "/api/v1/models/aliases/prod"),
    ("POST", "/api/v1/models/1/predict"), ("POST", "/api/v1/models/prod/predict"),
]
BODIES = {
    "empty": {"data": b""},
    "json null": {"data": b"null", "content_type": "application/json"},
    "json string": {"data": b'"x"', "content_type": "application/json"},
    "json list": {"data": b"[1, 2]", "content_type": "application/json"},
    "json nested junk": {"data": b'{"inputs": {"a": [1]}, "data": [], "model": 1}',
                         "content_type": "application/json"},
    "bad utf-8": {"data": b"\xff\xfe{", "content_type": "application/json"},
    "binary": {"data": bytes(range(256)), "content_type": "application/octet-stream"},
    "form": {"data": {"image": "text"}, "content_type": "multipart/form-data"},
    "xml": {"data": b"<job/>", "content_type": "application/xml"},
}


@pytest.mark.parametrize("method,path", ROUTES)
def test_garbage_never_gets_a_5xx(client, method, path):
    for name, kwargs in BODIES.items():
        r = client.open(path, method=method, query_string="limit=x&offset=-1", **kwargs)
        assert r.status_code < 500, (name, r.get_data(as_text=True))
        if r.status_code >= 400:
            assert r.is_json and set(r.get_json()["error"]) == {"code", "message", "details"}
