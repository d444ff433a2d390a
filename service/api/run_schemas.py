"""Response models of a job's run records (losses, activations, attempts) and of /workers.

Built through ``schemas.dump`` like every other response, so the OpenAPI document shows
exactly what the dashboard reads.
"""

from __future__ import annotations

from pydantic import Field

from service.api.schemas import JobOut, Out, UtcTime


class LossPoint(Out):
    iteration: int = Field(description="1-based, counted across epochs")
    epoch: int
    loss: float | None = Field(description="train-mode minibatch loss, weight decay included")


class LossesOut(Out):
    job_id: int
    every: int = Field(description="the stride the worker kept (1 = every iteration); each "
                                   "epoch's last iteration is kept as well")
    items: list[LossPoint]


class ActivationOut(Out):
    epoch: int
    layer: int = Field(description="index in the expanded layer list")
    name: str = Field(description='e.g. "2 relu"')
    type: str
    mean: float | None
    std: float | None
    edges: list[float | None] = Field(description="len(counts) + 1 bin edges")
    counts: list[int]


class ActivationsOut(Out):
    job_id: int
    probe_size: int = Field(description="samples in the fixed eval-mode probe batch")
    items: list[ActivationOut]


class AttemptOut(Out):
    attempt: int
    worker: str = Field(description="the lease owner, host:pid:token")
    host: str
    started_at: UtcTime
    ended_at: UtcTime | None
    resumed_from_epoch: int
    outcome: str | None = Field(description='the job status it ended with, "lost" when its '
                                            'worker died, null while it runs')


class AttemptsOut(Out):
    job_id: int
    items: list[AttemptOut]


class WorkerOut(Out):
    name: str
    host: str
    pid: int | None
    queues: list[str]
    job_id: int | None
    lease_expires_at: UtcTime | None


class QueueDepth(Out):
    name: str
    depth: int


class WorkersOut(Out):
    workers: list[WorkerOut]
    queues: list[QueueDepth]
    waiting: list[JobOut]
