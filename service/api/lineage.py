"""A model's lineage, its reproduction, its ONNX export, and importing tensors as a model."""

from __future__ import annotations

import json
from typing import ClassVar

from flask import Response, request
from flask_openapi3 import APIBlueprint, RawModel, Tag
from flask_openapi3.models import MediaType, RequestBody, Schema

from nncore import SpecError
from nncore.onnx_export import (
    BATCH_DIM,
    INPUT_NAME,
    OPSET,
    OUTPUT_NAME,
    ExportError,
    onnx_bytes,
    signature,
)
from service import inference
from service.api import API_PREFIX
from service.api.deps import db, setting
from service.api.jobs import job_dict
from service.api.lineage_schemas import LineageOut, ReproduceOut
from service.api.models import corrupt_model
from service.api.schemas import ModelOut, ModelPath, dump
from service.db import Model
from service.db import model_store as store
from service.db.lineage import lineage_of
from service.db.reproductions import ReproductionView, reproductions_of
from service.errors import (
    Conflict,
    ErrorResponse,
    NotFound,
    Unprocessable,
    error_responses,
    invalid_response,
)
from service.model_import import ImportRejected, import_model
from service.queue import enqueue
from service.reproduce import CannotReproduce, reproduce

bp = APIBlueprint("lineage", __name__, url_prefix=f"{API_PREFIX}/models",
                  abp_tags=[Tag(name="lineage", description="where a model came from, "
                                "reproducing it, exporting and importing models")],
                  abp_responses=error_responses())
MUTATING = [{"bearer": []}]
ONNX = {"content": {"application/octet-stream": {"schema": {"type": "string",
                                                            "format": "binary"}}},
        "description": f"an ONNX model (opset {OPSET}): input {INPUT_NAME!r} of shape "
                       f"({BATCH_DIM}, *input_shape), output {OUTPUT_NAME!r} of shape "
                       f"({BATCH_DIM}, num_classes), the model's dtype"}
IMPORT_FIELDS = ("state", "spec")


class ImportBody(RawModel):
    mimetypes: ClassVar[list[str]] = ["multipart/form-data"]


def _model(ref: str) -> Model:
    try:
        model_id = inference.resolve_ref(db(), ref)
    except inference.ModelNotFound as exc:
        raise NotFound(f"ref: {exc}") from None
    model = store.get_model(db(), model_id)
    if model is None:
        raise NotFound(f"ref: no model {ref!r}")
    return model


def _reproduction(view: ReproductionView) -> dict:
    row = view.row
    fields = ("id", "original_model_id", "job_id", "model_id", "tensors", "conditions",
              "created_at", "finished_at")
    return {**{f: getattr(row, f) for f in fields}, "verdict": view.verdict,
            "error": view.error}


@bp.get("/<ref>/lineage", responses={200: LineageOut})
def read_lineage(path: ModelPath):
    """Where the model came from: the submitted and expanded spec, every seed and generator,
    the dataset's files and arrays by sha256, the software and BLAS it trained with, the job,
    sweep, trial and attempts, and every reproduction's verdict."""
    model = _model(path.ref)
    lineage = lineage_of(db(), model)
    reproductions = [_reproduction(v) for v in reproductions_of(db(), model.id)]
    run = {"job_id": lineage.job_id, "sweep_id": lineage.sweep_id,
           "trial_index": lineage.trial_index, "attempts": lineage.attempts,
           "wall_seconds": lineage.wall_seconds, "train_seconds": lineage.train_seconds}
    out = {"model_id": model.id, "source": lineage.source, "recorded": lineage.recorded,
           "spec": lineage.spec, "expanded_spec": lineage.expanded_spec,
           "seeds": lineage.seeds, "data": lineage.data, "environment": lineage.environment,
           "run": run, "reproductions": reproductions,
           "verdict": reproductions[-1]["verdict"] if reproductions else None,
           "onnx": signature(model.input_shape, model.num_classes, model.dtype)}
    return dump(LineageOut, out)


@bp.post("/<ref>/reproduce", responses={202: ReproduceOut, 409: ErrorResponse},
         security=MUTATING)
def reproduce_model(path: ModelPath):
    """Re-train the model from its recorded spec and seeds (202 with the queued job). When
    the job stores its model, every tensor's sha256 is compared with this model's and the
    verdict (``identical`` or ``differs``, with the tensors and conditions that differ) is
    stored on both. 409 when a recorded dataset file is gone or changed (naming the file and
    both hashes) or nothing records how the model was trained."""
    model = _model(path.ref)
    try:
        reproduction, job = reproduce(db(), model, setting("NNQ_DATA_DIR"))
    except CannotReproduce as exc:
        raise Conflict(exc.message, details=exc.details) from None
    enqueue(job.id, job.device, broker_url=setting("NNQ_BROKER_URL"))
    view = ReproductionView(reproduction, job.status, job.error)
    return dump(ReproduceOut, {"reproduction": _reproduction(view), "job": job_dict(job)}), 202


@bp.get("/<ref>/model.onnx", responses={200: ONNX, 409: ErrorResponse})
def export_onnx(path: ModelPath):
    """The eval-mode network as ONNX (affine, conv, max pool, BatchNorm with its running
    statistics, ReLU/sigmoid/tanh, Dropout as identity, softmax output), checked with
    ``onnx.checker``. 409 naming the tensor when a stored tensor fails its sha256, size,
    shape or dtype, or is missing or extra for the model's layers."""
    model = _model(path.ref)
    try:
        state = inference.stored_state(db(), model)
    except inference.ModelCorrupt as exc:
        raise corrupt_model(exc) from None
    try:
        data = onnx_bytes(model.layers, model.input_shape, model.num_classes, state,
                          model.dtype, name=model.name,
                          metadata={"nnq.model_id": str(model.id)})
    except ExportError as exc:
        raise Conflict(str(exc)) from None
    return Response(data, mimetype="application/octet-stream",
                    headers={"Content-Disposition":
                             f"attachment; filename=model-{model.id}.onnx"})


def _upload(field: str) -> bytes:
    """A multipart part, sent as a file or as a text field."""
    if field in request.files:
        return request.files[field].read()
    if field in request.form:
        return request.form[field].encode()
    raise Unprocessable(f"{field}: missing; send {' and '.join(IMPORT_FIELDS)} as "
                        "multipart/form-data", details=[{"field": field,
                                                         "message": "missing"}])


@bp.post("/import", responses={201: ModelOut, 409: ErrorResponse}, security=MUTATING)
def import_state(raw: ImportBody):
    """Store tensors trained elsewhere (``python -m nncore train``'s model file or a
    ``state.npz``) as a model of the job spec's network (201). Every tensor is checked by
    name, shape and dtype against the expanded layers before anything is stored; a missing,
    extra or mis-shaped tensor is a 422 naming it."""
    if request.mimetype != "multipart/form-data":
        raise Unprocessable("body: send multipart/form-data with parts 'state' (.npz) and "
                            "'spec' (JSON)")
    state, spec_text = (_upload(field) for field in IMPORT_FIELDS)
    try:
        spec = json.loads(spec_text)
    except ValueError as exc:
        return invalid_response([("spec", f"not JSON ({exc})")])
    try:
        model = import_model(db(), state, spec)
    except SpecError as exc:
        return invalid_response(exc.under("spec").problems)
    except ImportRejected as exc:
        return invalid_response(exc.problems)
    fields = ("id", "job_id", "name", "input_shape", "num_classes", "dtype", "metrics",
              "created_at", "layers", "data_fingerprint")
    out = {**{f: getattr(model, f) for f in fields}, "aliases": [],
           "tensors": store.tensors(db(), model.id, with_data=False)}
    return dump(ModelOut, out), 201


def _document_import_body() -> None:
    """The import route reads its multipart parts by hand; describe them in the document."""
    binary = Schema(type="string", format="binary")
    bp.paths[f"{API_PREFIX}/models/import"].post.requestBody = RequestBody(
        required=True, content={"multipart/form-data": MediaType(schema=Schema(
            type="object", properties={"state": binary, "spec": binary},
            required=list(IMPORT_FIELDS)))})


_document_import_body()
