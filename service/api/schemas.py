"""Request and response models of the HTTP API; the OpenAPI document is generated from them.

Responses are built through these models too (``dump``), so what the document promises is
what the code sends.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from nnq.status import JobStatus
from service.db import MAX_ID

MAX_PAGE = 500
MAX_OFFSET = 10**9
ALIAS_PATTERN = r"^[A-Za-z][A-Za-z0-9._-]{0,99}$"
# A model id in ASCII digits, or an alias name: nothing else can name a model (superscript or
# other non-ASCII digits are refused here rather than misread as an id).
MODEL_REF_PATTERN = r"^(?:[0-9]{1,100}|[A-Za-z][A-Za-z0-9._-]{0,99})$"
MODEL_REF_DOC = "a model id (digits), or an alias name (starts with a letter)"


def _utc_iso(value: dt.datetime) -> str:
    """Stored times are naive UTC; say so with a trailing Z."""
    return value.replace(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")


UtcTime = Annotated[dt.datetime, PlainSerializer(_utc_iso, return_type=str)]


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def dump(model: type[BaseModel], obj: Any) -> dict:
    """``obj`` (a row or a dict) validated through ``model`` into JSON-ready data."""
    return model.model_validate(obj).model_dump(mode="json")


# --- jobs ---------------------------------------------------------------------------------

class JobPath(BaseModel):
    job_id: int = Field(ge=1, le=MAX_ID)


class SubmitHeaders(BaseModel):
    idempotency_key: str | None = Field(
        None, alias="Idempotency-Key", min_length=1, max_length=200,
        description="Idempotency-Key: a repeat with the same key returns the same job")


class JobQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal[JobStatus.values()] | None = None
    name: str | None = Field(None, max_length=200)
    sweep_id: int | None = Field(None, ge=1, le=MAX_ID, description="only this sweep's trials")
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class Progress(Out):
    epoch: int
    iteration: int
    total_iterations: int


class JobOut(Out):
    id: int
    name: str
    status: str
    device: str
    progress: Progress
    attempts: int
    max_attempts: int
    error: str | None
    model_id: int | None
    sweep_id: int | None
    cancel_requested: bool
    spec: dict[str, Any]
    created_at: UtcTime
    started_at: UtcTime | None
    finished_at: UtcTime | None
    updated_at: UtcTime


class JobList(Out):
    items: list[JobOut]
    total: int
    limit: int
    offset: int


class MetricRow(Out):
    epoch: int
    train_loss: float | None
    train_acc: float | None
    val_acc: float | None
    test_acc: float | None
    seconds: float | None


class MetricsOut(Out):
    job_id: int
    items: list[MetricRow]


# --- models -------------------------------------------------------------------------------

class ModelPath(BaseModel):
    ref: str = Field(min_length=1, max_length=100, pattern=MODEL_REF_PATTERN,
                     description=MODEL_REF_DOC)


class AliasPath(BaseModel):
    name: str = Field(pattern=ALIAS_PATTERN, description="starts with a letter; not all digits")


class AliasIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_id: int = Field(ge=1, le=MAX_ID)


class AliasOut(Out):
    name: str
    model_id: int
    updated_at: UtcTime


class TensorOut(Out):
    name: str
    role: Literal["param", "buffer"]
    dtype: str
    shape: list[int]
    nbytes: int
    sha256: str


class ModelSummary(Out):
    id: int
    job_id: int | None
    name: str
    input_shape: list[int]
    num_classes: int
    dtype: str
    metrics: dict[str, Any]
    aliases: list[str]
    created_at: UtcTime


class ModelOut(ModelSummary):
    layers: list[dict[str, Any]]
    data_fingerprint: str | None
    tensors: list[TensorOut]


class ModelList(Out):
    items: list[ModelSummary]
    total: int
    limit: int
    offset: int


class ModelQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(50, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class PredictIn(BaseModel):
    """JSON form of a predict request. The same route also takes an ``.npy`` body
    (application/octet-stream or application/x-npy) or a multipart PNG upload (field ``image``)."""

    model_config = ConfigDict(extra="forbid")

    inputs: list[Any] = Field(
        description="samples, each flat (784 values) or shaped like the model's input_shape; "
                    "values are floats in [0, 1] like the training data")


class PredictOut(Out):
    model_id: int
    labels: list[int]
    probabilities: list[list[float]]


# --- health -------------------------------------------------------------------------------

class LiveOut(Out):
    status: Literal["ok"]


class HealthOut(Out):
    status: Literal["ok", "degraded", "down"]
    db: bool
    broker: bool
    workers: bool
    worker_count: int
