"""The job lifecycle as plain functions, shared by the API and the workers.

Each function is one short transaction on the given session and commits before
it returns. Ownership is a lease: a worker writes to a job only while
``lease_owner`` is its own, checked in the same UPDATE that writes, so two
deliveries of one job can never both train it.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.db.models import (
    TERMINAL_STATUSES,
    Checkpoint,
    EpochMetric,
    Job,
    Model,
    utcnow,
)
from service.db.tensors import tensor_rows

MAX_ATTEMPTS_ENV = "NNQ_MAX_ATTEMPTS"
DEFAULT_MAX_ATTEMPTS = 3
METRIC_FIELDS = ("train_loss", "train_acc", "val_acc", "test_acc", "seconds")


class LeaseLost(RuntimeError):
    """This worker no longer owns the job (its lease expired and another took it)."""


def _max_attempts() -> int:
    return int(os.environ.get(MAX_ATTEMPTS_ENV) or DEFAULT_MAX_ATTEMPTS)


def _finite(value: Any) -> float | None:
    """A JSON-safe float: NaN/inf become None (PostgreSQL's json rejects them)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _owned(job_id: int, owner: str):
    return and_(Job.id == job_id, Job.status == "running", Job.lease_owner == owner)


def _claimable(now: dt.datetime):
    return or_(Job.status == "queued",
               and_(Job.status == "running", Job.lease_expires_at < now))


def get_job(session: Session, job_id: int) -> Job | None:
    """The job as stored now (bypassing the session's identity map)."""
    return session.get(Job, job_id, populate_existing=True)


def create_job(session: Session, spec: Mapping[str, Any], device: str = "cpu",
               idempotency_key: str | None = None, *, name: str | None = None,
               max_attempts: int | None = None, sweep_id: int | None = None
               ) -> tuple[Job, bool]:
    """Insert a queued job; with a known ``idempotency_key`` return that job instead.

    Returns ``(job, created)``: enqueue only when ``created`` (after this commit).
    """
    if idempotency_key is not None:
        existing = session.scalar(select(Job).where(Job.idempotency_key == idempotency_key))
        if existing is not None:
            return existing, False
    job = Job(name=name or str(spec.get("name") or "job"), status="queued", spec=dict(spec),
              device=device, idempotency_key=idempotency_key,
              max_attempts=max_attempts or _max_attempts(), sweep_id=sweep_id)
    session.add(job)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        if idempotency_key is None:
            raise
        existing = session.scalar(select(Job).where(Job.idempotency_key == idempotency_key))
        if existing is None:
            raise
        return existing, False
    return job, True


def claim_job(session: Session, job_id: int, owner: str, lease_seconds: float) -> Job | None:
    """Take the job for ``owner`` if it is queued or its lease expired; else None.

    One conditional UPDATE makes the claim exclusive. A job out of attempts is
    failed here instead, and a cancel requested of a dead worker's job ends it.
    """
    now = utcnow()
    claimed = session.execute(
        update(Job)
        .where(Job.id == job_id, _claimable(now), Job.attempts < Job.max_attempts,
               Job.cancel_requested.is_(False))
        .values(status="running", lease_owner=owner,
                lease_expires_at=now + dt.timedelta(seconds=lease_seconds),
                attempts=Job.attempts + 1, error=None,
                started_at=func.coalesce(Job.started_at, now), updated_at=now)
    ).rowcount
    session.commit()
    if claimed:
        return get_job(session, job_id)
    _settle_unclaimable(session, job_id, now)
    return None


def _settle_unclaimable(session: Session, job_id: int, now: dt.datetime) -> None:
    """End a claimable job that may not run again: cancelled, or out of attempts."""
    job = get_job(session, job_id)
    if job is None or job.is_terminal:
        return
    if job.status == "running" and job.lease_expires_at and job.lease_expires_at >= now:
        return
    if job.cancel_requested:
        _end(session, job_id, "cancelled", None, and_(Job.id == job_id, _claimable(now)))
    elif job.attempts >= job.max_attempts:
        reason = (f"gave up after {job.attempts} attempt(s): the worker stopped without "
                  f"finishing each time (last owner {job.lease_owner or 'none'})")
        _end(session, job_id, "failed", reason, and_(Job.id == job_id, _claimable(now)))


def _end(session: Session, job_id: int, status: str, error: str | None, where) -> bool:
    now = utcnow()
    done = session.execute(
        update(Job).where(where, Job.status.not_in(TERMINAL_STATUSES))
        .values(status=status, error=error, finished_at=now, updated_at=now,
                lease_owner=None, lease_expires_at=None)
    ).rowcount
    session.commit()
    return bool(done)


def renew_lease(session: Session, job_id: int, owner: str, lease_seconds: float) -> bool:
    """Extend ``owner``'s lease; False means the job is no longer ours."""
    now = utcnow()
    renewed = session.execute(
        update(Job).where(_owned(job_id, owner))
        .values(lease_expires_at=now + dt.timedelta(seconds=lease_seconds))
    ).rowcount
    session.commit()
    return bool(renewed)


def record_progress(session: Session, job_id: int, owner: str, epoch: int, iteration: int,
                    total_iterations: int) -> bool:
    """Write progress (the epoch in progress, 1-based); False means we lost the job."""
    written = session.execute(
        update(Job).where(_owned(job_id, owner))
        .values(epoch=epoch, iteration=iteration, total_iterations=total_iterations,
                updated_at=utcnow())
    ).rowcount
    session.commit()
    return bool(written)


def cancel_requested(session: Session, job_id: int) -> bool:
    """Whether someone asked to cancel the job (a cheap primary-key read)."""
    flag = session.scalar(select(Job.cancel_requested).where(Job.id == job_id))
    session.commit()
    return bool(flag)


def request_cancel(session: Session, job_id: int) -> Job | None:
    """Cancel a queued job now; flag a running one for its worker. None if no such job."""
    now = utcnow()
    session.execute(
        update(Job).where(Job.id == job_id, Job.status == "queued")
        .values(status="cancelled", cancel_requested=True, finished_at=now, updated_at=now))
    session.execute(
        update(Job).where(Job.id == job_id, Job.status == "running")
        .values(cancel_requested=True, updated_at=now))
    session.commit()
    return get_job(session, job_id)


def record_epoch(session: Session, job_id: int, owner: str, metrics: Mapping[str, Any],
                 checkpoint: bytes, *, iteration: int | None = None,
                 total_iterations: int | None = None) -> None:
    """One epoch's metrics row and the job's checkpoint, together or not at all.

    Raises LeaseLost when another worker owns the job, writing nothing.
    """
    epoch = int(metrics["epoch"])
    progress: dict[str, Any] = {"epoch": epoch, "updated_at": utcnow()}
    if iteration is not None:
        progress["iteration"] = iteration
    if total_iterations is not None:
        progress["total_iterations"] = total_iterations
    if not session.execute(update(Job).where(_owned(job_id, owner)).values(**progress)).rowcount:
        session.rollback()
        raise LeaseLost(f"job {job_id}: lease lost before epoch {epoch} was recorded")
    session.execute(delete(EpochMetric).where(EpochMetric.job_id == job_id,
                                              EpochMetric.epoch == epoch))
    session.add(EpochMetric(job_id=job_id, epoch=epoch,
                            **{f: _finite(metrics.get(f)) for f in METRIC_FIELDS}))
    stored = session.get(Checkpoint, job_id)
    if stored is None:
        session.add(Checkpoint(job_id=job_id, epoch=epoch, state=checkpoint))
    else:
        stored.epoch, stored.state, stored.created_at = epoch, checkpoint, utcnow()
    session.commit()


def latest_checkpoint(session: Session, job_id: int) -> Checkpoint | None:
    """The checkpoint a resumed run starts from, if any epoch finished before."""
    return session.get(Checkpoint, job_id, populate_existing=True)


def finish_job(session: Session, job_id: int, owner: str, network, metrics: Mapping[str, Any],
               fingerprint: str | None) -> Model:
    """Store the trained network as a model plus one row per tensor; job succeeded.

    All in one transaction: either the job has its complete model or nothing.
    Raises LeaseLost when another worker owns the job.
    """
    now = utcnow()
    if not session.execute(
            update(Job).where(_owned(job_id, owner))
            .values(status="succeeded", finished_at=now, updated_at=now, error=None,
                    lease_owner=None, lease_expires_at=None)).rowcount:
        session.rollback()
        raise LeaseLost(f"job {job_id}: lease lost before the model was stored")
    job = session.get(Job, job_id)
    roles = network.tensor_roles()
    model = Model(
        job_id=job_id, name=job.name, input_shape=[int(d) for d in network.input_shape],
        num_classes=int(network.num_classes), dtype=np.dtype(network.dtype).name,
        layers=list(network.layers_spec),
        metrics={k: (_finite(v) if isinstance(v, float | np.floating) else v)
                 for k, v in metrics.items()},
        data_fingerprint=fingerprint,
        tensors=tensor_rows(network.state_dict(), roles))
    session.add(model)
    session.flush()
    job.model_id = model.id
    session.commit()
    return model


def fail_job(session: Session, job_id: int, reason: str, owner: str | None = None) -> bool:
    """End a job ``failed`` with a readable reason; with ``owner``, only if still ours."""
    where = _owned(job_id, owner) if owner else (Job.id == job_id)
    return _end(session, job_id, "failed", reason, where)


def mark_cancelled(session: Session, job_id: int, owner: str | None = None) -> bool:
    """End a job ``cancelled`` (its worker saw the flag between iterations)."""
    where = _owned(job_id, owner) if owner else (Job.id == job_id)
    return _end(session, job_id, "cancelled", None, where)


def mark_pruned(session: Session, job_id: int, owner: str, reason: str) -> bool:
    """End a sweep trial ``pruned`` (early stopping); its metrics rows stay, no model."""
    return _end(session, job_id, "pruned", reason, _owned(job_id, owner))


def release_job(session: Session, job_id: int, owner: str, error: str) -> bool:
    """Hand a job back to the queue after a transient error, keeping its checkpoint."""
    released = session.execute(
        update(Job).where(_owned(job_id, owner))
        .values(status="queued", lease_owner=None, lease_expires_at=None, error=error,
                updated_at=utcnow())
    ).rowcount
    session.commit()
    return bool(released)


def expired_leases(session: Session, now: dt.datetime | None = None) -> list[Job]:
    """Running jobs whose worker stopped renewing: candidates to resume."""
    now = now or utcnow()
    jobs = list(session.scalars(
        select(Job).where(Job.status == "running", Job.lease_expires_at < now)
        .order_by(Job.id)))
    session.commit()
    return jobs


def requeue_expired(session: Session, job_id: int) -> bool:
    """Move a dead worker's job back to ``queued`` so exactly one caller re-enqueues it.

    Jobs out of attempts (or cancelled meanwhile) are ended instead; returns
    True only when the caller should send a new message.
    """
    now = utcnow()
    moved = session.execute(
        update(Job).where(Job.id == job_id, Job.status == "running",
                          Job.lease_expires_at < now, Job.attempts < Job.max_attempts,
                          Job.cancel_requested.is_(False))
        .values(status="queued", lease_owner=None, lease_expires_at=None, updated_at=now)
    ).rowcount
    session.commit()
    if not moved:
        _settle_unclaimable(session, job_id, now)
    return bool(moved)


def stale_queued(session: Session, older_than_seconds: float) -> list[Job]:
    """Queued jobs untouched for a while: their message may have been lost."""
    cutoff = utcnow() - dt.timedelta(seconds=older_than_seconds)
    jobs = list(session.scalars(
        select(Job).where(Job.status == "queued", Job.updated_at < cutoff).order_by(Job.id)))
    session.commit()
    return jobs


def touch_queued(session: Session, job_id: int, older_than_seconds: float) -> bool:
    """Claim the right to re-send a stale queued job's message (one caller wins)."""
    now = utcnow()
    cutoff = now - dt.timedelta(seconds=older_than_seconds)
    touched = session.execute(
        update(Job).where(Job.id == job_id, Job.status == "queued", Job.updated_at < cutoff)
        .values(updated_at=now)
    ).rowcount
    session.commit()
    return bool(touched)
