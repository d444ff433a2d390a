"""Attempts: one row per claim of a job, the timeline the dashboard shows.

A lease owner is ``host:pid:token`` (``owner_for``); the attempt keeps it and its host. The
job store opens an attempt in the claim's transaction and closes it in the transaction that
ends the claim, so the timeline never disagrees with the job row: ``claim_job`` opens one
(closing a dead predecessor's as ``lost``), the terminal functions close it with the job's
status, the reconciler's requeue closes it as ``lost``.

The attempt budget (``spent_attempts``, ``out_of_attempts``): an attempt that stored a
checkpoint newer than the one it resumed from made progress and does not count against the
job's ``max_attempts``, which is meant for jobs that cannot run, not for workers that die
(a SIGKILL, a host lost) while the job advances. Progress is bounded by the job's epochs,
and ``NNQ_MAX_CLAIMS`` caps all claims of a job, progress or not, so nothing loops forever.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.db.models import ATTEMPT_LOST, Checkpoint, Job, JobAttempt, utcnow
from service.db.scope import transactional
from service.settings import settings

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
    resumed = None
    if job.attempts > 1:  # the first claim has no attempt before it and no checkpoint yet
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


def spent_attempts(session: Session, job_id: int) -> int:
    """Attempts that count against ``max_attempts``: those that ended (or, still open, have
    so far) without a checkpoint newer than the one they resumed from. Each attempt's end
    epoch is the next attempt's resume epoch; the last one's is the stored checkpoint's."""
    resumed = list(session.scalars(select(JobAttempt.resumed_from_epoch)
                                   .where(JobAttempt.job_id == job_id)
                                   .order_by(JobAttempt.attempt)))
    if not resumed:
        return 0
    latest = session.scalar(select(Checkpoint.epoch).where(Checkpoint.job_id == job_id)) or 0
    ends = [*resumed[1:], latest]
    return sum(1 for start, end in zip(resumed, ends, strict=True) if end <= start)


def out_of_attempts(session: Session, job: Job) -> str | None:
    """Why ``job`` may not be claimed again (None when it may): ``max_attempts`` attempts
    without progress, or ``NNQ_MAX_CLAIMS`` claims in all."""
    spent = spent_attempts(session, job.id) if job.attempts else 0  # never claimed: no rows
    if spent >= job.max_attempts:
        return (f"gave up after {spent} attempt(s) without progress (of {job.attempts} in "
                f"all): the worker stopped or failed without storing a new checkpoint each "
                f"time (last owner {job.lease_owner or 'none'})")
    cap = max(settings().max_claims, job.max_attempts)
    if job.attempts >= cap:
        return (f"gave up after {job.attempts} attempts in all (NNQ_MAX_CLAIMS={cap}), "
                f"{spent} of them without progress (last owner {job.lease_owner or 'none'})")
    return None
