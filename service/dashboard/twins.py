"""Twins: recent jobs whose spec differs from a job's in exactly one field (its name aside).

They make the lecture's comparisons one click from a job page: the same network with and
without BatchNorm, or the 300-sample run with and without weight decay, show up as the job's
twins with a compare link.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from service.dashboard.spec_diff import differing
from service.db import Job
from service.db import jobs as job_store

TWIN_SEARCH = 500  # the newest jobs searched; a page must not scan a whole history
MAX_TWINS = 10
IGNORED = frozenset({"name"})  # every job has its own name


@dataclass(frozen=True)
class Twin:
    job_id: int
    name: str
    path: str      # the one spec field that differs
    mine: Any      # its value in the job the page shows
    theirs: Any    # and in the twin


def twins(session: Session, job: Job) -> list[Twin]:
    """Up to MAX_TWINS recent jobs differing from ``job`` in exactly one spec field."""
    found = []
    for other_id, name, spec in job_store.recent_specs(session, TWIN_SEARCH):
        if other_id == job.id:
            continue
        rows = [row for row in differing([job.spec, spec]) if row[0] not in IGNORED]
        if len(rows) == 1:
            path, (mine, theirs) = rows[0]
            found.append(Twin(other_id, name, path, mine, theirs))
            if len(found) == MAX_TWINS:
                break
    return found
