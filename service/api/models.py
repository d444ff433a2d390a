"""Models: list, read (architecture, metrics, tensor list), download state, aliases, predict."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from flask import Response, current_app, request
from flask_openapi3 import APIBlueprint, RawModel, Tag
from flask_openapi3.models import MediaType, RequestBody, Schema
from pydantic import ValidationError

import nncore
from nncore import SpecError
from nncore.schema import problems_from
from service import inference
from service.api import API_PREFIX
from service.api.deps import EXTENSION, db
from service.api.schemas import (
    AliasIn,
    AliasOut,
    AliasPath,
    ModelList,
    ModelOut,
    ModelPath,
    ModelQuery,
    PredictIn,
    PredictOut,
    dump,
)
from service.db import Model
from service.db import model_store as store
from service.errors import (
    Conflict,
    ErrorResponse,
    NotFound,
    Unprocessable,
    error_responses,
    invalid_response,
)
from service.jsonio import numpy_json

bp = APIBlueprint("models", __name__, url_prefix=f"{API_PREFIX}/models",
                  abp_tags=[Tag(name="models", description="trained networks and inference")],
                  abp_responses=error_responses())
MUTATING = [{"bearer": []}]
NPY_TYPES = ("application/octet-stream", "application/x-npy")
NPZ = {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
       "description": "the model's tensors as .npz (no pickle)"}


class PredictBody(RawModel):
    mimetypes: ClassVar[list[str]] = ["application/json", *NPY_TYPES, "multipart/form-data"]


def _summary(model: Model, aliases: list[str]) -> dict:
    fields = ("id", "job_id", "name", "input_shape", "num_classes", "dtype", "metrics",
              "created_at")
    return {**{f: getattr(model, f) for f in fields}, "aliases": aliases}


def _model_id(ref: str) -> int:
    try:
        return inference.resolve_ref(db(), ref)
    except inference.ModelNotFound as exc:
        raise NotFound(f"ref: {exc}") from None


def _model(ref: str) -> Model:
    model = store.get_model(db(), _model_id(ref))
    if model is None:
        raise NotFound(f"ref: no model {ref!r}")
    return model


@bp.get("", responses={200: ModelList})
def list_models(query: ModelQuery):
    """Stored models, newest first, with their final metrics and aliases."""
    models, total = store.list_models(db(), query.limit, query.offset)
    aliases = store.aliases_of(db(), [m.id for m in models])
    items = [_summary(m, aliases[m.id]) for m in models]
    return dump(ModelList, {"items": items, "total": total, "limit": query.limit,
                            "offset": query.offset})


@bp.get("/<ref>", responses={200: ModelOut})
def read_model(path: ModelPath):
    """A model: expanded layers (``nncore.build({"layers": layers}, ...)`` rebuilds it),
    metrics, and one entry per stored tensor, BatchNorm running statistics included."""
    model = _model(path.ref)
    tensors = store.tensors(db(), model.id, with_data=False)
    aliases = store.aliases_of(db(), [model.id])[model.id]
    out = {**_summary(model, aliases), "layers": model.layers,
           "data_fingerprint": model.data_fingerprint, "tensors": tensors}
    return dump(ModelOut, out)


def corrupt_model(exc: inference.ModelCorrupt) -> Conflict:
    """409 naming the tensor that failed its checks (``details.tensor``)."""
    return Conflict(str(exc), details={"model_id": exc.model_id, "tensor": exc.tensor,
                                       "problem": exc.problem})


@bp.get("/<ref>/state.npz", responses={200: NPZ, 409: ErrorResponse})
def model_state(path: ModelPath):
    """The stored tensors as an .npz archive, loadable with ``allow_pickle=False``. 409
    naming the tensor when one fails its sha256, size, shape or dtype, or is missing or
    extra for the model's layers."""
    model = _model(path.ref)
    try:
        state = inference.stored_state(db(), model)
    except inference.ModelCorrupt as exc:
        raise corrupt_model(exc) from None
    data = nncore.state_to_bytes(state)
    return Response(data, mimetype="application/octet-stream",
                    headers={"Content-Disposition": f"attachment; filename=model-{model.id}.npz"})


@bp.put("/aliases/<name>", responses={200: AliasOut}, security=MUTATING)
def set_alias(path: AliasPath, body: AliasIn):
    """Point an alias (e.g. ``production``) at a model; predict and read accept the alias."""
    try:
        alias = store.set_alias(db(), path.name, body.model_id)
    except store.NoSuchModel as exc:
        raise NotFound(f"model_id: {exc}") from None
    return dump(AliasOut, alias)


def _request_inputs() -> tuple:
    """The samples of a predict request, by content type: JSON, .npy, or PNG upload."""
    if request.mimetype in NPY_TYPES:
        return inference.from_npy(request.get_data()), "body"
    if request.mimetype == "multipart/form-data":
        files = request.files.getlist("image")
        if not files:
            raise Unprocessable("image: upload a 28x28 PNG in the form field 'image'")
        return inference.from_png([f.read() for f in files]), "image"
    if not request.is_json:
        raise Unprocessable(f"body: unsupported Content-Type {request.mimetype!r}; send JSON, "
                            ".npy (application/octet-stream) or a PNG upload")
    return inference.from_json(_json_inputs(request.get_json(silent=True))), "inputs"


def _json_inputs(payload) -> list:
    """``payload["inputs"]``; the usual well-formed body skips pydantic, anything else gets
    PredictIn's field-level errors."""
    if type(payload) is dict and len(payload) == 1 and type(payload.get("inputs")) is list:
        return payload["inputs"]
    try:
        return PredictIn.model_validate(payload).inputs
    except ValidationError as exc:
        raise SpecError(problems_from(exc, payload)) from None


@bp.post("/<ref>/predict", responses={200: PredictOut, 409: ErrorResponse},
         security=MUTATING)
def predict(path: ModelPath, raw: PredictBody):
    """Class probabilities and labels from the eval-mode forward (running statistics, no
    dropout). Body: JSON ``{"inputs": [...]}``, an ``.npy`` array, or a PNG in field ``image``.

    The model comes from the process's cache (``inference.serving_model``): a request by id
    reads nothing from the database while its entry is fresh. 409 naming the tensor when
    one fails its checks as the model is loaded."""
    try:
        loaded = inference.serving_model(current_app.extensions[EXTENSION]["sessions"],
                                         path.ref)
    except inference.ModelNotFound as exc:
        raise NotFound(f"ref: {exc}") from None
    except inference.ModelCorrupt as exc:
        raise corrupt_model(exc) from None
    try:
        x, field = _request_inputs()
        x = inference.shape_inputs(x, loaded.net.input_shape, loaded.net.dtype, field)
    except inference.InputError as exc:
        return invalid_response([(exc.field, exc.message)])
    labels, proba = loaded.predict(x)
    body = numpy_json({"model_id": loaded.model_id, "labels": labels,
                       "probabilities": proba.astype(np.float64, copy=False)})
    return Response(body, mimetype="application/json")


def _document_predict_body() -> None:
    """The predict route reads its body by hand; describe its three forms in the document."""
    binary = Schema(type="string", format="binary")
    bp.paths[f"{API_PREFIX}/models/{{ref}}/predict"].post.requestBody = RequestBody(
        required=True,
        content={
            "application/json": MediaType(schema=Schema(**{"$ref": "#/components/schemas/PredictIn"})),
            **{t: MediaType(schema=binary) for t in NPY_TYPES},
            "multipart/form-data": MediaType(schema=Schema(
                type="object", properties={"image": binary}, required=["image"])),
        })
    bp.components_schemas["PredictIn"] = Schema(**PredictIn.model_json_schema())


_document_predict_body()
