"""Reproductions: a model re-trained from its recorded spec and seeds, and the verdict.

``create_reproduction`` inserts the job and its reproduction row in one transaction; the
worker that stores the job's model settles the verdict in the model's own transaction
(``lineage.finish_with_lineage``): ``identical`` when every tensor's sha256 equals the
original's, else ``differs`` with each differing tensor's largest absolute difference. A
reproduction whose job ended without a model reads as ``failed``, with the job's reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from nnq.status import JobStatus
from service.db.jobs import create_job
from service.db.models import (
    VERDICT_DIFFERS,
    VERDICT_IDENTICAL,
    VERDICT_PENDING,
    Job,
    Model,
    ModelTensor,
    Reproduction,
    utcnow,
)
from service.db.scope import transaction, transactional
from service.db.tensors import decode_tensor
from service.db.values import finite

VERDICT_FAILED = "failed"
CORRUPT = "stored bytes do not match their sha256"


@dataclasses.dataclass
class ReproductionView:
    """A reproduction with its verdict as shown: ``failed`` (and the job's error) when the
    job ended without storing a model."""

    row: Reproduction
    job_status: str | None
    job_error: str | None

    @property
    def verdict(self) -> str:
        ended_without_model = (self.row.verdict == VERDICT_PENDING and self.job_status in
                               JobStatus.FINISHED and self.job_status != JobStatus.SUCCEEDED)
        return VERDICT_FAILED if ended_without_model else self.row.verdict

    @property
    def error(self) -> str | None:
        if self.verdict != VERDICT_FAILED:
            return None
        return self.job_error or f"the reproduction job ended {self.job_status}"


@transactional
def create_reproduction(session: Session, model: Model, spec: dict, device: str, name: str
                        ) -> tuple[Reproduction, Job]:
    """A queued job training ``spec`` and the reproduction row waiting for its model;
    enqueue the job after this returns (committed)."""
    job, _ = create_job(session, spec, device, name=name)
    reproduction = Reproduction(original_model_id=model.id, job_id=job.id,
                                verdict=VERDICT_PENDING, tensors=[], conditions=[])
    session.add(reproduction)
    session.flush()
    return reproduction, job


@transactional
def reproductions_of(session: Session, model_id: int) -> list[ReproductionView]:
    """Every reproduction of the model, and the one that produced it, oldest first."""
    rows = session.execute(
        select(Reproduction, Job.status, Job.error).join(Job, Job.id == Reproduction.job_id)
        .where(or_(Reproduction.original_model_id == model_id,
                   Reproduction.model_id == model_id))
        .order_by(Reproduction.id))
    return [ReproductionView(row, status, error) for row, status, error in rows]


def pending_for_job(session: Session, job_id: int) -> Reproduction | None:
    """The reproduction a job was submitted for, while it waits for its model."""
    return session.scalar(select(Reproduction).where(Reproduction.job_id == job_id,
                                                     Reproduction.verdict == VERDICT_PENDING))


def _difference(name: str, original: ModelTensor | None, reproduced: ModelTensor | None) -> dict:
    entry = {"name": name, "original_sha256": original.sha256 if original else None,
             "reproduced_sha256": reproduced.sha256 if reproduced else None,
             "max_abs_diff": None, "note": None}
    if original is None or reproduced is None:
        entry["note"] = "only in the " + ("reproduction" if original is None else "original")
        return entry
    try:
        a, b = decode_tensor(original), decode_tensor(reproduced)
    except ValueError:
        entry["note"] = CORRUPT
        return entry
    if a.shape != b.shape:
        entry["note"] = f"shape {list(a.shape)} vs {list(b.shape)}"
    elif a.size:
        entry["max_abs_diff"] = finite(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
    return entry


def tensor_differences(original: Sequence[ModelTensor], reproduced: Sequence[ModelTensor]
                       ) -> list[dict]:
    """The tensors whose sha256 differ (or that only one side has), in the original's order,
    each with its largest absolute difference."""
    theirs = {row.name: row for row in reproduced}
    diffs = []
    for row in original:
        other = theirs.pop(row.name, None)
        if other is None or other.sha256 != row.sha256:
            diffs.append(_difference(row.name, row, other))
    return diffs + [_difference(name, None, row) for name, row in theirs.items()]


def settle(session: Session, reproduction: Reproduction, model: Model, original_tensors,
           conditions: list[dict]) -> None:
    """Record the verdict on ``reproduction`` for its freshly stored ``model`` (in the
    caller's transaction)."""
    with transaction(session):
        diffs = tensor_differences(original_tensors, model.tensors)
        reproduction.model_id = model.id
        reproduction.verdict = VERDICT_DIFFERS if diffs else VERDICT_IDENTICAL
        reproduction.tensors, reproduction.conditions = diffs, conditions
        reproduction.finished_at = utcnow()
