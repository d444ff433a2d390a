"""What the workers page reads from the database: who holds which job, who waits longest."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nnq.status import JobStatus
from service.db.models import Job
from service.db.scope import transactional

WAITING_SHOWN = 10


@transactional
def held_jobs(session: Session) -> list[Job]:
    """Running jobs with a lease owner, oldest first (the owner names host and pid)."""
    return list(session.scalars(
        select(Job).where(Job.status == JobStatus.RUNNING, Job.lease_owner.is_not(None))
        .order_by(Job.id)))


@transactional
def waiting_jobs(session: Session, limit: int = WAITING_SHOWN) -> list[Job]:
    """Queued jobs, the one waiting longest first."""
    return list(session.scalars(
        select(Job).where(Job.status == JobStatus.QUEUED)
        .order_by(Job.created_at, Job.id).limit(limit)))


@transactional
def queued_count(session: Session) -> int:
    """How many jobs wait in the queue (the API's quota counts them)."""
    return session.scalar(
        select(func.count()).select_from(Job).where(Job.status == JobStatus.QUEUED))
