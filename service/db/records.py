"""Run records: the per-iteration losses and per-layer activation statistics of a job.

``replace_epoch`` runs inside ``jobs.record_epoch``'s transaction, so an epoch's records land
with its metrics row and checkpoint or not at all. It deletes that epoch's rows first: an
epoch trained again after a crash (the resume restarts from the last epoch checkpoint)
replaces them, so the curve has no duplicate and no gap.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from nncore.training import EpochRecord, loss_stride
from service.db.models import ActivationStat, IterationLoss, Job
from service.db.scope import transactional
from service.db.values import finite


def replace_epoch(session: Session, job_id: int, record: EpochRecord) -> None:
    """Write one epoch's kept losses and activation statistics in the caller's transaction."""
    epoch = record.epoch
    session.execute(delete(IterationLoss).where(IterationLoss.job_id == job_id,
                                                IterationLoss.epoch == epoch))
    session.execute(delete(ActivationStat).where(ActivationStat.job_id == job_id,
                                                 ActivationStat.epoch == epoch))
    if record.losses:
        session.execute(insert(IterationLoss), [
            {"job_id": job_id, "iteration": iteration, "epoch": epoch, "loss": finite(loss)}
            for iteration, loss in record.losses])
    if record.activations:
        session.execute(insert(ActivationStat), [
            {"job_id": job_id, "epoch": epoch, "layer": stat["layer"], "name": stat["name"],
             "type": stat["type"], "probe_size": record.probe_size,
             "mean": finite(stat["mean"]), "std": finite(stat["std"]),
             "edges": [finite(e) for e in stat["edges"]], "counts": list(stat["counts"])}
            for stat in record.activations])


def loss_every(job: Job) -> int:
    """The job's loss stride, from the iteration count its worker reported (nncore's rule)."""
    return loss_stride(job.total_iterations)


@transactional
def iteration_losses(session: Session, job_id: int) -> list[IterationLoss]:
    """The job's kept losses, in iteration order."""
    return list(session.scalars(select(IterationLoss).where(IterationLoss.job_id == job_id)
                                .order_by(IterationLoss.iteration)))


@transactional
def activation_stats(session: Session, job_id: int) -> list[ActivationStat]:
    """The job's activation statistics, by epoch then layer."""
    return list(session.scalars(select(ActivationStat).where(ActivationStat.job_id == job_id)
                                .order_by(ActivationStat.epoch, ActivationStat.layer)))
