"""The job lifecycle as plain functions, shared by the API, the scheduler and the workers.

Each function is one short transaction on the given session (``service.db.scope``): it
commits before it returns, or joins the caller's transaction when called inside one.
Ownership is a lease: a worker writes to a job only while ``lease_owner`` is its own,
checked in the same UPDATE that writes, so two deliveries of one job can never both train it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import numpy as np
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from nncore.training import METRIC_KEYS, EpochRecord
from nnq.status import JobStatus
from service.db import records
from service.db.attempts import close_attempts, open_attempt, out_of_attempts
from service.db.idempotent import create_once
from service.db.models import (
    ATTEMPT_LOST,
    METRIC_FIELDS,
    Checkpoint,
    EpochMetric,
    Job,
    Model,
    utcnow,
)
from service.db.paging import DEFAULT_PAGE_SIZE, newest_first
from service.db.scope import transactional
from service.db.tensors import tensor_rows
from service.db.values import finite
from service.settings import settings

DEFAULT_DEVICE = "cpu"
DEFAULT_JOB_NAME = "job"


class LeaseLost(RuntimeError):
    """This worker no longer owns the job (its lease expired and another took it)."""


def _owned(job_id: int, owner: str):
    return and_(Job.id == job_id, Job.status == JobStatus.RUNNING, Job.lease_owner == owner)


def _claimable(now: dt.datetime):
    return or_(Job.status == JobStatus.QUEUED,
               and_(Job.status == JobStatus.RUNNING, Job.lease_expires_at < now))


@transactional
def get_job(session: Session, job_id: int) -> Job | None:
    """The job as stored now (bypassing the session's identity map)."""
    return session.get(Job, job_id, populate_existing=True)


def create_job(session: Session, spec: Mapping[str, Any], device: str = DEFAULT_DEVICE,
               idempotency_key: str | None = None, *, name: str | None = None,
               max_attempts: int | None = None, sweep_id: int | None = None
               ) -> tuple[Job, bool]:
    """Insert a queued job; with a known ``idempotency_key`` return that job instead.

    Returns ``(job, created)``: enqueue only when ``created``, after the commit (its own,
    or that of the scheduler's round it joined).
    """
    return create_once(session, Job, idempotency_key, lambda: Job(
        name=name or str(spec.get("name") or DEFAULT_JOB_NAME), status=JobStatus.QUEUED,
        spec=dict(spec), device=device, max_attempts=max_attempts or settings().max_attempts,
        sweep_id=sweep_id))


@transactional
def list_jobs(session: Session, status: str | None = None, name: str | None = None,
              limit: int = DEFAULT_PAGE_SIZE, offset: int = 0, *, sweep_id: int | None = None
              ) -> tuple[list[Job], int]:
    """A page of jobs, newest first, and the total matching ``status``, ``name`` and
    ``sweep_id`` (each only when given)."""
    where = []
    if status:
        where.append(Job.status == status)
    if name:
        where.append(Job.name == name)
    if sweep_id is not None:
        where.append(Job.sweep_id == sweep_id)
    return newest_first(session, Job, where, limit, offset)


@transactional
def recent_specs(session: Session, limit: int) -> list[tuple[int, str, dict[str, Any]]]:
    """``(id, name, spec)`` of the newest ``limit`` jobs: what a comparison of specs needs,
    without loading whole rows or counting the table."""
    rows = session.execute(select(Job.id, Job.name, Job.spec).order_by(Job.id.desc())
                           .limit(limit))
    return [tuple(row) for row in rows]


@transactional
def epoch_metrics(session: Session, job_id: int) -> list[EpochMetric]:
    """The job's per-epoch rows, oldest first."""
    return list(session.scalars(select(EpochMetric).where(EpochMetric.job_id == job_id)
                                .order_by(EpochMetric.epoch)))


@transactional
def last_epoch_metrics(session: Session, job_id: int) -> dict[str, Any]:
    """The last epoch's row as a dict (``epoch`` and the metric fields); empty without one."""
    row = session.scalars(select(EpochMetric).where(EpochMetric.job_id == job_id)
                          .order_by(EpochMetric.epoch.desc()).limit(1)).first()
    return {} if row is None else {k: getattr(row, k) for k in METRIC_KEYS}


@transactional
def last_epoch_metrics_of(session: Session, job_ids: list[int]) -> dict[int, dict[str, Any]]:
    """``last_epoch_metrics`` of many jobs in one query (a list page, not one per row); a job
    without a finished epoch is absent."""
    if not job_ids:
        return {}
    last = (select(EpochMetric.job_id, func.max(EpochMetric.epoch).label("epoch"))
            .where(EpochMetric.job_id.in_(job_ids)).group_by(EpochMetric.job_id).subquery())
    rows = session.scalars(select(EpochMetric).join(
        last, and_(EpochMetric.job_id == last.c.job_id, EpochMetric.epoch == last.c.epoch)))
    return {row.job_id: {k: getattr(row, k) for k in METRIC_KEYS} for row in rows}


@transactional
def claim_job(session: Session, job_id: int, owner: str, lease_seconds: float) -> Job | None:
    """Take the job for ``owner`` if it is queued or its lease expired; else None.

    One conditional UPDATE makes the claim exclusive; the claim's attempt row is written in
    the same transaction. A job out of attempts (``attempts.out_of_attempts``: attempts that
    made progress do not count) is failed here instead, and a cancel requested of a dead
    worker's job ends it.
    """
    now = utcnow()
    job = _claim_first(session, job_id, owner, lease_seconds, now)
    if job is not None:
        open_attempt(session, job, owner, now)
        return job
    job = get_job(session, job_id)
    if job is None or out_of_attempts(session, job):
        _settle_unclaimable(session, job_id, now)
        return None
    claimed = session.execute(_claim_update(job_id, owner, lease_seconds, now, _claimable(now),
                                            Job.attempts == job.attempts)).rowcount
    if claimed:
        job = get_job(session, job_id)
        open_attempt(session, job, owner, now)
        return job
    _settle_unclaimable(session, job_id, now)
    return None


def _claim_first(session: Session, job_id: int, owner: str, lease_seconds: float,
                 now: dt.datetime) -> Job | None:
    """The common claim, of a queued job nobody claimed before, as one UPDATE ... RETURNING
    (a first claim has no attempts to count): the job, or None for every other case."""
    return session.scalars(
        _claim_update(job_id, owner, lease_seconds, now, Job.status == JobStatus.QUEUED,
                      Job.attempts == 0).returning(Job),
        execution_options={"populate_existing": True}).first()


def _claim_update(job_id: int, owner: str, lease_seconds: float, now: dt.datetime, *where):
    """The UPDATE that takes the job for ``owner`` where ``where`` holds (and no cancel
    was asked for): what a claim sets, written once for both kinds of claim."""
    return (update(Job)
            .where(Job.id == job_id, *where, Job.cancel_requested.is_(False))
            .values(status=JobStatus.RUNNING, lease_owner=owner,
                    lease_expires_at=now + dt.timedelta(seconds=lease_seconds),
                    attempts=Job.attempts + 1, error=None,
                    started_at=func.coalesce(Job.started_at, now), updated_at=now))


def _settle_unclaimable(session: Session, job_id: int, now: dt.datetime) -> None:
    """End a claimable job that may not run again: cancelled, or out of attempts. Its open
    attempt, if any, belonged to a worker that died: it ends ``lost``."""
    job = get_job(session, job_id)
    if job is None or job.is_terminal:
        return
    if job.status == JobStatus.RUNNING and job.lease_expires_at and job.lease_expires_at >= now:
        return
    claimable = and_(Job.id == job_id, _claimable(now))
    if job.cancel_requested:
        _end(session, job_id, JobStatus.CANCELLED, None, claimable, ATTEMPT_LOST)
    elif reason := out_of_attempts(session, job):
        _end(session, job_id, JobStatus.FAILED, reason, claimable, ATTEMPT_LOST)


def _end(session: Session, job_id: int, status: JobStatus, error: str | None, where,
         outcome: str | None = None) -> bool:
    """End the job with ``status`` where ``where`` holds; its open attempt ends with
    ``outcome`` (default: the status)."""
    now = utcnow()
    done = session.execute(
        update(Job).where(where, Job.status.in_(JobStatus.LIVE))
        .values(status=status, error=error, finished_at=now, updated_at=now,
                lease_owner=None, lease_expires_at=None)
    ).rowcount
    if done:
        close_attempts(session, job_id, outcome or status, now)
    return bool(done)


@transactional
def renew_lease(session: Session, job_id: int, owner: str, lease_seconds: float) -> bool:
    """Extend ``owner``'s lease; False means the job is no longer ours."""
    now = utcnow()
    renewed = session.execute(
        update(Job).where(_owned(job_id, owner))
        .values(lease_expires_at=now + dt.timedelta(seconds=lease_seconds))
    ).rowcount
    return bool(renewed)


@transactional
def record_progress(session: Session, job_id: int, owner: str, epoch: int, iteration: int,
                    total_iterations: int) -> bool:
    """Write progress (the epoch in progress, 1-based); False means we lost the job."""
    written = session.execute(
        update(Job).where(_owned(job_id, owner))
        .values(epoch=epoch, iteration=iteration, total_iterations=total_iterations,
                updated_at=utcnow())
    ).rowcount
    return bool(written)


@transactional
def heartbeat(session: Session, job_id: int, owner: str, lease_seconds: float,
              progress: Mapping[str, int] | None = None) -> bool | None:
    """A running job's one periodic write: renew ``owner``'s lease and write ``progress``
    (``epoch``, ``iteration``, ``total_iterations``) in one UPDATE that reads the cancel flag
    back. None when the job is no longer ours, else whether a cancel was requested."""
    now = utcnow()
    values: dict[str, Any] = {"lease_expires_at": now + dt.timedelta(seconds=lease_seconds)}
    if progress is not None:
        values.update({key: progress[key] for key in ("epoch", "iteration", "total_iterations")},
                      updated_at=now)
    row = session.execute(
        update(Job).where(_owned(job_id, owner)).values(**values)
        .returning(Job.cancel_requested).execution_options(synchronize_session=False)
    ).first()
    return None if row is None else bool(row[0])


@transactional
def cancel_requested(session: Session, job_id: int) -> bool:
    """Whether someone asked to cancel the job (a cheap primary-key read)."""
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


@transactional
def request_cancel(session: Session, job_id: int) -> Job | None:
    """Cancel a queued job now; flag a running one for its worker. None if no such job."""
    now = utcnow()
    session.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED)
        .values(status=JobStatus.CANCELLED, cancel_requested=True, finished_at=now,
                updated_at=now))
    session.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING)
        .values(cancel_requested=True, updated_at=now))
    return get_job(session, job_id)


@transactional
def record_epoch(session: Session, job_id: int, owner: str, metrics: Mapping[str, Any],
                 checkpoint: bytes | None, *, iteration: int | None = None,
                 total_iterations: int | None = None,
                 record: EpochRecord | None = None) -> None:
    """One epoch's metrics row, its run record (losses, activation statistics) and the job's
    checkpoint, together or not at all; a repeated epoch replaces its rows. Without a
    checkpoint the job's stays at an earlier epoch, so a resumed run trains this one again and
    replaces its rows.

    Raises LeaseLost when another worker owns the job, writing nothing.
    """
    epoch = int(metrics["epoch"])
    progress: dict[str, Any] = {"epoch": epoch, "updated_at": utcnow()}
    if iteration is not None:
        progress["iteration"] = iteration
    if total_iterations is not None:
        progress["total_iterations"] = total_iterations
    if not session.execute(update(Job).where(_owned(job_id, owner)).values(**progress)).rowcount:
        raise LeaseLost(f"job {job_id}: lease lost before epoch {epoch} was recorded")
    session.execute(delete(EpochMetric).where(EpochMetric.job_id == job_id,
                                              EpochMetric.epoch == epoch))
    session.add(EpochMetric(job_id=job_id, epoch=epoch,
                            **{f: finite(metrics.get(f)) for f in METRIC_FIELDS}))
    if record is not None:
        records.replace_epoch(session, job_id, record)
    if checkpoint is None:  # rows of an epoch the next checkpoint write covers
        return
    stored = session.get(Checkpoint, job_id)
    if stored is None:
        session.add(Checkpoint(job_id=job_id, epoch=epoch, state=checkpoint))
    else:
        stored.epoch, stored.state, stored.created_at = epoch, checkpoint, utcnow()


@transactional
def latest_checkpoint(session: Session, job_id: int) -> Checkpoint | None:
    """The checkpoint a resumed run starts from, if any epoch finished before."""
    return session.get(Checkpoint, job_id, populate_existing=True)


@transactional
def finish_job(session: Session, job_id: int, owner: str, network, metrics: Mapping[str, Any],
               fingerprint: str | None) -> Model:
    """Store the trained network as a model plus one row per tensor; job succeeded.

    All in one transaction: either the job has its complete model or nothing.
    Raises LeaseLost when another worker owns the job.
    """
    now = utcnow()
    if not session.execute(
            update(Job).where(_owned(job_id, owner))
            .values(status=JobStatus.SUCCEEDED, finished_at=now, updated_at=now, error=None,
                    lease_owner=None, lease_expires_at=None)).rowcount:
        raise LeaseLost(f"job {job_id}: lease lost before the model was stored")
    close_attempts(session, job_id, JobStatus.SUCCEEDED, now)
    job = session.get(Job, job_id)
    roles = network.tensor_roles()
    model = Model(
        job_id=job_id, name=job.name, input_shape=[int(d) for d in network.input_shape],
        num_classes=int(network.num_classes), dtype=np.dtype(network.dtype).name,
        layers=list(network.layers_spec),
        metrics={k: (finite(v) if isinstance(v, float | np.floating) else v)
                 for k, v in metrics.items()},
        data_fingerprint=fingerprint,
        tensors=tensor_rows(network.state_dict(), roles))
    session.add(model)
    session.flush()
    job.model_id = model.id
    return model


@transactional
def fail_job(session: Session, job_id: int, reason: str, owner: str | None = None) -> bool:
    """End a job ``failed`` with a readable reason; with ``owner``, only if still ours."""
    where = _owned(job_id, owner) if owner else (Job.id == job_id)
    return _end(session, job_id, JobStatus.FAILED, reason, where)


@transactional
def mark_cancelled(session: Session, job_id: int, owner: str | None = None) -> bool:
    """End a job ``cancelled`` (its worker saw the flag between iterations)."""
    where = _owned(job_id, owner) if owner else (Job.id == job_id)
    return _end(session, job_id, JobStatus.CANCELLED, None, where)


@transactional
def mark_pruned(session: Session, job_id: int, owner: str, reason: str) -> bool:
    """End a sweep trial ``pruned`` (early stopping); its metrics rows stay, no model."""
    return _end(session, job_id, JobStatus.PRUNED, reason, _owned(job_id, owner))


@transactional
def release_job(session: Session, job_id: int, owner: str, error: str) -> bool:
    """Hand a job back to the queue after a transient error, keeping its checkpoint; the
    attempt ends ``queued`` (the job's error says why)."""
    now = utcnow()
    released = session.execute(
        update(Job).where(_owned(job_id, owner))
        .values(status=JobStatus.QUEUED, lease_owner=None, lease_expires_at=None, error=error,
                updated_at=now)
    ).rowcount
    if released:
        close_attempts(session, job_id, JobStatus.QUEUED, now)
    return bool(released)


@transactional
def expired_leases(session: Session, now: dt.datetime | None = None) -> list[Job]:
    """Running jobs whose worker stopped renewing: candidates to resume."""
    now = now or utcnow()
    return list(session.scalars(
        select(Job).where(Job.status == JobStatus.RUNNING, Job.lease_expires_at < now)
        .order_by(Job.id)))


@transactional
def requeue_expired(session: Session, job_id: int) -> bool:
    """Move a dead worker's job back to ``queued`` so exactly one caller re-enqueues it.

    Jobs out of attempts (or cancelled meanwhile) are ended instead; returns
    True only when the caller should send a new message. The dead worker's attempt ends
    ``lost`` either way.
    """
    now = utcnow()
    job = get_job(session, job_id)
    if job is None or out_of_attempts(session, job):
        _settle_unclaimable(session, job_id, now)
        return False
    moved = session.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.RUNNING,
                          Job.lease_expires_at < now, Job.cancel_requested.is_(False))
        .values(status=JobStatus.QUEUED, lease_owner=None, lease_expires_at=None,
                updated_at=now)
    ).rowcount
    if moved:
        close_attempts(session, job_id, ATTEMPT_LOST, now)
    else:
        _settle_unclaimable(session, job_id, now)
    return bool(moved)


@transactional
def stale_queued(session: Session, older_than_seconds: float, device: str | None = None
                 ) -> list[Job]:
    """Queued jobs untouched for a while (of ``device`` only, when given): their message may
    have been lost."""
    cutoff = utcnow() - dt.timedelta(seconds=older_than_seconds)
    where = [Job.status == JobStatus.QUEUED, Job.updated_at < cutoff]
    if device is not None:
        where.append(Job.device == device)
    return list(session.scalars(select(Job).where(*where).order_by(Job.id)))


@transactional
def touch_queued(session: Session, job_id: int, older_than_seconds: float) -> bool:
    """Claim the right to re-send a stale queued job's message (one caller wins)."""
    now = utcnow()
    cutoff = now - dt.timedelta(seconds=older_than_seconds)
    touched = session.execute(
        update(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED,
                          Job.updated_at < cutoff)
        .values(updated_at=now)
    ).rowcount
    return bool(touched)
