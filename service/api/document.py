"""What the OpenAPI document says beyond the routes' own models: the links from a response to
the operations its ids open, what a sweep's ``base`` is, and the Retry-After header.

Links let a client (and Schemathesis's stateful runs) follow a submitted job to its metrics
or a listed model to predict, instead of guessing ids. Each is declared once here, by path
and method, and resolved to the operation ids flask-openapi3 generated; a target that no
blueprint serves is left out.
"""

from __future__ import annotations

from flask_openapi3 import OpenAPI
from flask_openapi3.models import Header, Link, Schema

from service.api import API_PREFIX

JOB = f"{API_PREFIX}/jobs/{{job_id}}"
SWEEP = f"{API_PREFIX}/sweeps/{{sweep_id}}"
MODEL = f"{API_PREFIX}/models/{{ref}}"
JOB_TARGETS = [("get", JOB), ("get", f"{JOB}/metrics"), ("get", f"{JOB}/curves.png"),
               ("get", f"{JOB}/losses"), ("get", f"{JOB}/activations"),
               ("get", f"{JOB}/attempts"), ("post", f"{JOB}/cancel")]
SWEEP_TARGETS = [("get", SWEEP), ("get", f"{SWEEP}/plot.png"), ("post", f"{SWEEP}/cancel"),
                 ("post", f"{SWEEP}/promote"),
                 *(("get", f"{SWEEP}/{view}{kind}") for view in
                   ("importances", "history", "parallel-coordinates") for kind in ("", ".png"))]
MODEL_TARGETS = [("get", MODEL), ("get", f"{MODEL}/state.npz"), ("post", f"{MODEL}/predict"),
                 ("get", f"{MODEL}/lineage"), ("get", f"{MODEL}/model.onnx"),
                 ("post", f"{MODEL}/reproduce")]
FIRST_ITEM_ID = "$response.body#/items/0/id"
# (method, path, statuses) of a response -> (parameter, its value, the operations it opens)
LINKS = [
    ("post", f"{API_PREFIX}/jobs", ("200", "202"), "job_id", "$response.body#/id", JOB_TARGETS),
    ("get", f"{API_PREFIX}/jobs", ("200",), "job_id", FIRST_ITEM_ID, JOB_TARGETS),
    ("post", f"{API_PREFIX}/sweeps", ("200", "202"), "sweep_id", "$response.body#/id",
     SWEEP_TARGETS),
    ("get", f"{API_PREFIX}/sweeps", ("200",), "sweep_id", FIRST_ITEM_ID, SWEEP_TARGETS),
    ("get", f"{API_PREFIX}/models", ("200",), "ref", FIRST_ITEM_ID, MODEL_TARGETS),
    ("put", f"{API_PREFIX}/models/aliases/{{name}}", ("200",), "ref", "$response.body#/name",
     MODEL_TARGETS),
]
RETRY_AFTER = Header(description="seconds to wait before trying again",
                     schema=Schema(type="integer", minimum=0))
RETRY_STATUSES = ("429", "503")
# A sweep's base is validated as a whole job spec (the space then overrides fields of it).
SWEEP_BASE = {"$ref": "#/components/schemas/JobSpec",
              "description": "a job spec, as POST /jobs takes it; the space overrides its fields"}


def _operation(app: OpenAPI, method: str, path: str):
    item = app.paths.get(path)
    return getattr(item, method) if item is not None else None


def _add_links(app: OpenAPI) -> None:
    for method, path, statuses, parameter, value, targets in LINKS:
        source = _operation(app, method, path)
        if source is None:
            continue
        links = {}
        for target_method, target_path in targets:
            target = _operation(app, target_method, target_path)
            if target is not None:
                links[target.operationId] = Link(operationId=target.operationId,
                                                 parameters={parameter: value})
        for status in statuses:
            response = (source.responses or {}).get(status)
            if response is not None and links:
                response.links = {**(response.links or {}), **links}


def _add_retry_after(app: OpenAPI) -> None:
    for item in app.paths.values():
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(item, method)
            for status in RETRY_STATUSES:
                response = (operation.responses or {}).get(status) if operation else None
                if response is not None:
                    response.headers = {**(response.headers or {}), "Retry-After": RETRY_AFTER}


def _describe_sweep_base(app: OpenAPI) -> None:
    request = app.components_schemas.get("SweepRequest")
    if request is not None and request.properties and "base" in request.properties:
        request.properties["base"] = Schema(**SWEEP_BASE)


def finish_document(app: OpenAPI) -> None:
    """After every blueprint is registered: links, Retry-After, the sweep's base."""
    _add_links(app)
    _add_retry_after(app)
    _describe_sweep_base(app)
