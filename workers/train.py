"""The ``nnq.train_job`` task: claim a job, train it with nncore, record everything.

The task is a thin wrapper around ``run_job``, a plain function: claim with a
lease (a second delivery of a running job is dropped), resume from the last
checkpoint, train with JobTracker's callbacks, and end the job in exactly one
terminal state. Errors a retry cannot fix (bad spec or data, divergence) fail
the job at once with a readable reason; anything else is retried until the
job's attempts run out, so no job is left running forever.
"""

from __future__ import annotations

import logging
import os
import socket

from sqlalchemy.exc import SQLAlchemyError

import nncore
from nnq.status import JobStatus
from service.db import jobs as store
from service.db import session_factory
from service.db.attempts import owner_for
from service.db.lineage import finish_with_lineage
from service.db.models import Job
from service.queue import TRAIN_TASK, enqueue
from service.settings import settings
from service.spec import check_limits
from service.sweeps.pruning import should_prune
from service.sweeps.scheduler import advance_sweep
from workers.celery_app import app
from workers.tracker import JobTracker, Pruned

log = logging.getLogger(__name__)

RETRY_BASE_DELAY_S = 2.0


class JobRejected(Exception):
    """A job that can never succeed as submitted; its message becomes the reason."""


def worker_owner() -> str:
    """A lease owner unique to this process and claim: host:pid:random."""
    return owner_for(socket.gethostname(), os.getpid())


def _backend(device: str) -> str:
    if device != "gpu":
        return "numpy"
    if not nncore.cupy_available():
        raise JobRejected(f"device gpu: CuPy is not usable on worker host "
                          f"{socket.gethostname()}; install nnq[gpu] on a CUDA host")
    return "cupy"


def _parse(spec: dict) -> nncore.JobSpec:
    """The stored spec, parsed and expanded once; the service's limits are re-checked, so a
    row written by other means gets them too (a SpecError fails the job)."""
    parsed = nncore.parse_spec(spec)
    check_limits(parsed)
    return parsed


def _train(session, sessions, job: Job, owner: str, lease: float) -> None:
    run = nncore.TrainingRun.from_spec(_parse(job.spec), data_dir=settings().data_dir,
                                       backend=_backend(job.device))
    checkpoint = store.latest_checkpoint(session, job.id)
    if checkpoint is not None:
        log.info("job %s: resuming after epoch %s", job.id, checkpoint.epoch)
        run.restore(nncore.state_from_bytes(checkpoint.state))
    prune = (lambda: should_prune(session, job)) if job.sweep_id is not None else None
    with JobTracker(sessions, job.id, owner, lease,
                    lambda: nncore.state_to_bytes(run.checkpoint()), prune=prune) as tracker:
        run.fit(on_iteration=tracker.on_iteration, on_epoch=tracker.on_epoch,
                should_stop=tracker.should_stop)
    # The stored model's epoch (the best by val_acc with train.keep_best, else the last) gives
    # its headline numbers, whichever attempt trained it: the checkpoint carries every row.
    metrics = run.model_metrics()
    metrics["epochs"] = run.epoch
    finish_with_lineage(session, job.id, owner, run, metrics, settings().data_dir)


def run_job(job_id: int) -> str:
    """Train one job to a terminal state; returns what happened (for logs and tests).

    When a sweep trial's job ends, its sweep advances at once (the next trial starts, or the
    sweep finishes) instead of waiting for a reconciler round.
    """
    sessions = session_factory()
    outcome, sweep_id = _run_claimed(sessions, job_id)
    if sweep_id is not None and outcome in JobStatus.FINISHED:
        _advance(sessions, sweep_id)
    return outcome


def _advance(sessions, sweep_id: int) -> None:
    """Advance the sweep; on a DB error the reconciler's next round does it instead."""
    with sessions() as session:
        try:
            advance_sweep(session, sweep_id)
        except SQLAlchemyError:
            log.warning("sweep %s: advancing after a trial failed; the reconciler retries",
                        sweep_id, exc_info=True)


def _run_claimed(sessions, job_id: int) -> tuple[str, int | None]:
    """Claim and train; returns the outcome and the job's sweep id (None outside a sweep)."""
    outcome = _claim_and_train(sessions, job_id)
    with sessions() as session:
        job = store.get_job(session, job_id)
    return outcome, (job.sweep_id if job is not None else None)


def _claim_and_train(sessions, job_id: int) -> str:
    owner, lease = worker_owner(), settings().lease_seconds
    with sessions() as session:
        job = store.claim_job(session, job_id, owner, lease)
        if job is None:
            log.info("job %s: not claimable (running elsewhere or finished); dropped", job_id)
            return "dropped"
        log.info("job %s: claimed by %s (attempt %s/%s)", job_id, owner, job.attempts,
                 job.max_attempts)
        try:
            _train(session, sessions, job, owner, lease)
        except nncore.Cancelled:
            store.mark_cancelled(session, job_id, owner)
            return JobStatus.CANCELLED
        except Pruned as exc:
            log.info("job %s: %s", job_id, exc)
            store.mark_pruned(session, job_id, owner, str(exc))
            return JobStatus.PRUNED
        except store.LeaseLost:
            log.warning("job %s: lease lost; another worker continues it", job_id)
            return "lost"
        except nncore.DivergenceError as exc:
            store.fail_job(session, job_id, f"diverged (NaN/inf loss): {exc}", owner)
            return JobStatus.FAILED
        except nncore.DataError as exc:
            store.fail_job(session, job_id, f"data error: {exc}", owner)
            return JobStatus.FAILED
        except nncore.SpecError as exc:
            store.fail_job(session, job_id, f"invalid spec: {exc}", owner)
            return JobStatus.FAILED
        except JobRejected as exc:
            store.fail_job(session, job_id, str(exc), owner)
            return JobStatus.FAILED
        except Exception as exc:
            log.exception("job %s: unexpected error", job_id)
            return _retry_or_fail(session, job, owner, f"{type(exc).__name__}: {exc}")
    log.info("job %s: succeeded", job_id)
    return JobStatus.SUCCEEDED


def _retry_or_fail(session, job: Job, owner: str, error: str) -> str:
    if job.attempts >= job.max_attempts:
        store.fail_job(session, job.id, f"unexpected error on attempt {job.attempts} of "
                                        f"{job.max_attempts}: {error}", owner)
        return JobStatus.FAILED
    if store.release_job(session, job.id, owner, error):
        enqueue(job.id, job.device, countdown=RETRY_BASE_DELAY_S * 2 ** (job.attempts - 1))
    return "retry"


@app.task(name=TRAIN_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def train_job(job_id: int) -> str:
    """Celery entry point: the message carries only the job id."""
    return run_job(int(job_id))
