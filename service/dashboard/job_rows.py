"""The rows of the jobs page, read through the store: a page of jobs with their last
epoch's accuracies, filtered by status, name and sweep."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from service.dashboard.queries import JobFilters
from service.db import Job
from service.db import jobs as job_store


@dataclass
class JobRow:
    """A job and the metrics of its last recorded epoch (empty before the first)."""

    job: Job
    last: dict[str, Any] = field(default_factory=dict)


def job_page(session: Session, filters: JobFilters, limit: int, offset: int
             ) -> tuple[list[JobRow], int]:
    """One page of rows, newest first, and how many jobs match in all: three queries
    whatever the page size (page, count, the page's last epochs)."""
    jobs, total = job_store.list_jobs(session, filters.status, filters.name, limit, offset,
                                      sweep_id=filters.sweep)
    last = job_store.last_epoch_metrics_of(session, [job.id for job in jobs])
    return [JobRow(job, last.get(job.id, {})) for job in jobs], total
