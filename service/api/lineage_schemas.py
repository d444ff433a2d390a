"""Response models of the lineage, reproduction, export and import endpoints."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from service.api.schemas import JobOut, Out, UtcTime
from service.db.models import VERDICTS
from service.db.reproductions import VERDICT_FAILED

LINEAGE_SOURCES = ("trained", "imported", "unrecorded")


class AttemptRecord(Out):
    attempt: int
    worker: str
    host: str
    started_at: str | None
    ended_at: str | None
    resumed_from_epoch: int
    outcome: str | None


class RunLineage(Out):
    """The job that trained the model, its sweep and trial, each attempt and the wall time
    from its first start to its end (``train_seconds``: the epochs alone)."""

    job_id: int | None
    sweep_id: int | None
    trial_index: int | None
    attempts: list[AttemptRecord]
    wall_seconds: float | None
    train_seconds: float | None


class TensorDifference(Out):
    name: str
    original_sha256: str | None
    reproduced_sha256: str | None
    max_abs_diff: float | None
    note: str | None


class ConditionDifference(Out):
    condition: str = Field(description="e.g. blas.threads, numpy, data.files.<name>")
    original: Any
    reproduced: Any


class ReproductionOut(Out):
    """One re-training of ``original_model_id`` by ``job_id``; ``model_id`` is its model."""

    id: int
    original_model_id: int
    job_id: int
    model_id: int | None
    verdict: Literal[(*VERDICTS, VERDICT_FAILED)]
    tensors: list[TensorDifference]
    conditions: list[ConditionDifference]
    error: str | None
    created_at: UtcTime
    finished_at: UtcTime | None


class OnnxInfo(Out):
    """What ``GET /models/{ref}/model.onnx`` holds: feed ``input_name`` a float array of
    ``input_shape`` (``batch`` any size), read class probabilities from ``output_name``."""

    input_name: str
    input_shape: list[int | str]
    output_name: str
    output_shape: list[int | str]
    dtype: str
    opset: int


class LineageOut(Out):
    """Where the model came from. ``source``: ``trained`` by a job, ``imported``, or
    ``unrecorded`` (stored before lineage was recorded: what its job still tells)."""

    model_id: int
    source: Literal[LINEAGE_SOURCES]
    recorded: bool
    spec: dict[str, Any] | None = Field(description="the job spec as the job stored it")
    expanded_spec: dict[str, Any] | None = Field(description="the spec with the expanded layers")
    seeds: dict[str, Any] | None
    data: dict[str, Any]
    environment: dict[str, Any] | None
    run: RunLineage
    verdict: Literal[(*VERDICTS, VERDICT_FAILED)] | None = Field(
        description="the latest reproduction's verdict, of this model or by it")
    reproductions: list[ReproductionOut]
    onnx: OnnxInfo


class ReproduceOut(Out):
    reproduction: ReproductionOut
    job: JobOut

