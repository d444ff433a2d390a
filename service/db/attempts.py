"""Attempts: one row per claim of a job, the timeline the dashboard shows.

A lease owner is ``host:pid:token`` (``owner_for``); the attempt keeps it and its host. The
job store opens an attempt in the claim's transaction and closes it in the transaction that
ends the claim, so the timeline never disagrees with the job row: ``claim_job`` opens one
(closing a dead predecessor's as ``lost``), the terminal functions close it with the job's
status, the reconciler's requeue closes it as ``lost``.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.db.models import ATTEMPT_LOST, Checkpoint, Job, JobAttempt, utcnow
from service.db.scope import transactional

OWNER_TOKEN_CHARS = 8


def owner_for(host: str, pid: int) -> str:
    """A lease owner unique to one process and claim: host:pid:random."""
    return f"{host}:{pid}:{uuid.uuid4().hex[:OWNER_TOKEN_CHARS]}"


def owner_parts(owner: str) -> tuple[str, int | None]:
    """(host, pid) of a lease owner; pid None when the owner is not ``owner_for``'s form."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    return host, (int(pid) if pid.isdigit() else None)


def open_attempt(session: Session, job: Job, owner: str, now: dt.datetime) -> None:
    """Record the claim just made (``job.attempts`` is its number), resuming from the stored
    checkpoint's epoch; an attempt still open belonged to a worker that died."""
    close_attempts(session, job.id, ATTEMPT_LOST, now)
    resumed = session.scalar(select(Checkpoint.epoch).where(Checkpoint.job_id == job.id))
    session.add(JobAttempt(job_id=job.id, attempt=job.attempts, worker=owner,
                           host=owner_parts(owner)[0], started_at=now,
                           resumed_from_epoch=resumed or 0))


def close_attempts(session: Session, job_id: int, outcome: str,
                   now: dt.datetime | None = None) -> None:
    """End the job's open attempt (at most one is open) with ``outcome``."""
    session.execute(update(JobAttempt)
                    .where(JobAttempt.job_id == job_id, JobAttempt.ended_at.is_(None))
                    .values(ended_at=now or utcnow(), outcome=outcome))


@transactional
def job_attempts(session: Session, job_id: int) -> list[JobAttempt]:
    """The job's attempts, first first."""
    return list(session.scalars(select(JobAttempt).where(JobAttempt.job_id == job_id)
                                .order_by(JobAttempt.attempt)))
