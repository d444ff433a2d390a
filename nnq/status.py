"""The one status vocabulary of jobs, sweeps and sweep trials.

The values are what the database stores and the API sends. Members are strings, so a status
read back from a row compares and hashes equal to its member. Stdlib only: the server and the
CLI both import it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class _Lifecycle(StrEnum):
    """Statuses split in two: ``LIVE`` ones may still change, ``FINISHED`` ones never do."""

    LIVE: ClassVar[frozenset]
    FINISHED: ClassVar[frozenset]

    def is_finished(self) -> bool:
        return self in type(self).FINISHED

    @classmethod
    def values(cls) -> tuple[str, ...]:
        """The stored words as plain strings, for ``Literal`` types: a validation message
        then lists 'queued', 'running', ... rather than the members' reprs."""
        return tuple(member.value for member in cls)


class JobStatus(_Lifecycle):
    """A training job's state."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PRUNED = "pruned"


class SweepStatus(_Lifecycle):
    """A sweep's state; the scheduler advances only live sweeps."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


def _split(status: type[JobStatus | SweepStatus]) -> None:
    status.LIVE = frozenset({status.QUEUED, status.RUNNING})
    status.FINISHED = frozenset(status) - status.LIVE


_split(JobStatus)
_split(SweepStatus)

# A sweep trial has its job's status, or this one while it has no job yet.
TRIAL_PENDING = "pending"
# Every status a trial can show, in the order counts list them.
TRIAL_STATUSES = (TRIAL_PENDING, *JobStatus)
