"""Lineage rows: where each model came from, written with the model itself.

A worker stores a trained model with ``finish_with_lineage``: the model, its tensors, its
lineage and, when the job was a reproduction, the verdict all commit in one transaction, so
no model exists without its record. What can be computed without the database (file and
array hashes, versions, BLAS) is computed before that transaction opens. Models stored
before lineage existed have no row; ``LineageView`` then shows what their job still knows.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import nncore
from nncore.lineage import differing_conditions, run_lineage, seeds
from service.db import reproductions
from service.db.attempts import job_attempts
from service.db.jobs import finish_job
from service.db.model_store import tensors
from service.db.models import Job, JobAttempt, Model, ModelLineage, SweepTrial
from service.db.scope import transaction, transactional

SOURCE_TRAINED, SOURCE_IMPORTED, SOURCE_UNRECORDED = "trained", "imported", "unrecorded"


def expanded_spec(spec: nncore.JobSpec) -> dict:
    """The spec with its model replaced by the expanded layer list: itself a valid job spec
    that trains the same network."""
    return {**spec.document(), "model": {"layers": spec.layers}}


def attempt_record(attempt: JobAttempt) -> dict:
    """One attempt as JSON (naive UTC times, ISO 8601 with a Z)."""
    def when(value):
        return None if value is None else value.isoformat() + "Z"

    return {"attempt": attempt.attempt, "worker": attempt.worker, "host": attempt.host,
            "started_at": when(attempt.started_at), "ended_at": when(attempt.ended_at),
            "resumed_from_epoch": attempt.resumed_from_epoch, "outcome": attempt.outcome}


def finish_with_lineage(session: Session, job_id: int, owner: str, run: nncore.TrainingRun,
                        metrics: dict, data_dir=None, *, first=None) -> Model:
    """``jobs.finish_job`` plus the model's lineage (and a reproduction's verdict), together
    or not at all, after ``first(session)`` in the same transaction when given (a worker's
    last epoch rows). Raises LeaseLost like ``finish_job``. The lineage is computed before
    the transaction opens: hashing data keeps no transaction idle."""
    computed = run_lineage(run, data_dir)
    with transaction(session):
        if first is not None:
            first(session)
        model = finish_job(session, job_id, owner, run.network, metrics, run.dataset.fingerprint)
        lineage = _trained(session, model, run.spec, computed)
        session.add(lineage)
        session.flush()
        _settle_reproduction(session, model, lineage)
    return model


def _settle_reproduction(session: Session, model: Model, lineage: ModelLineage) -> None:
    """When the job reproduced a model, compare with it: tensors by sha256, conditions by
    their recorded values."""
    pending = reproductions.pending_for_job(session, model.job_id)
    if pending is None:
        return
    original = session.get(Model, pending.original_model_id)
    conditions = differing_conditions(_conditions(lineage_of(session, original)),
                                      _conditions(lineage))
    reproductions.settle(session, pending, model, tensors(session, original.id), conditions)


def _conditions(lineage) -> dict:
    return {"environment": lineage.environment, "data": lineage.data}


def _trained(session: Session, model: Model, spec: nncore.JobSpec, computed: dict
             ) -> ModelLineage:
    job = session.get(Job, model.job_id)
    attempts = [attempt_record(a) for a in job_attempts(session, job.id)]
    trial_index = session.scalar(select(SweepTrial.index).where(SweepTrial.job_id == job.id))
    wall = None
    if job.started_at is not None and job.finished_at is not None:
        wall = (job.finished_at - job.started_at).total_seconds()
    return ModelLineage(
        model_id=model.id, source=SOURCE_TRAINED, spec=dict(job.spec),
        expanded_spec=expanded_spec(spec), seeds=computed["seeds"], data=computed["data"],
        environment=computed["environment"], job_id=job.id, sweep_id=job.sweep_id,
        trial_index=trial_index, attempts=attempts, wall_seconds=wall,
        train_seconds=computed["train_seconds"])


def imported_lineage(spec: nncore.JobSpec, fingerprint: str | None) -> ModelLineage:
    """The lineage of tensors trained elsewhere: the spec and its seeds are known, the data
    only by name (and the fingerprint a model file carries), the software not at all."""
    data = {"dataset": spec.data.dataset, "options": spec.data.options(), "files": [],
            "arrays": {}, "fingerprint": fingerprint}
    return ModelLineage(source=SOURCE_IMPORTED, spec=spec.document(),
                        expanded_spec=expanded_spec(spec), seeds=seeds(spec), data=data,
                        environment=None, attempts=[])


@dataclasses.dataclass
class LineageView:
    """A model's lineage as the API shows it, recorded or (for older models) reconstructed."""

    source: str
    spec: dict[str, Any] | None
    expanded_spec: dict[str, Any] | None
    seeds: dict[str, Any] | None
    data: dict[str, Any]
    environment: dict[str, Any] | None
    job_id: int | None
    sweep_id: int | None
    trial_index: int | None
    attempts: list[dict]
    wall_seconds: float | None
    train_seconds: float | None

    @property
    def recorded(self) -> bool:
        return self.source != SOURCE_UNRECORDED


@transactional
def lineage_of(session: Session, model: Model) -> LineageView:
    """The stored lineage of ``model``, or what its job row still tells for a model stored
    before lineage was recorded."""
    row = session.get(ModelLineage, model.id)
    if row is not None:
        fields = [f.name for f in dataclasses.fields(LineageView)]
        return LineageView(**{name: getattr(row, name) for name in fields})
    return _reconstructed(session, model)


def _reconstructed(session: Session, model: Model) -> LineageView:
    job = session.get(Job, model.job_id) if model.job_id is not None else None
    spec = dict(job.spec) if job is not None else None
    parsed = _parsed(spec)
    trial_index = None if job is None else session.scalar(
        select(SweepTrial.index).where(SweepTrial.job_id == job.id))
    return LineageView(
        source=SOURCE_UNRECORDED, spec=spec,
        expanded_spec=({**spec, "model": {"layers": model.layers}} if spec else None),
        seeds=seeds(parsed) if parsed is not None else None,
        data={"dataset": (spec or {}).get("data", {}).get("dataset"), "files": [], "arrays": {},
              "fingerprint": model.data_fingerprint},
        environment=None, job_id=model.job_id, sweep_id=job.sweep_id if job else None,
        trial_index=trial_index,
        attempts=[attempt_record(a) for a in job_attempts(session, job.id)] if job else [],
        wall_seconds=None, train_seconds=None)


def _parsed(spec: dict | None) -> nncore.JobSpec | None:
    """An older job's spec parsed by today's schema, or None when it no longer parses."""
    if spec is None:
        return None
    try:
        return nncore.parse_spec(spec)
    except nncore.SpecError:
        return None
