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
from service.db.attempts import out_of_attempts, owner_for
from service.db.lineage import finish_with_lineage
from service.db.models import Job
from service.queue import TRAIN_TASK, enqueue
from service.settings import settings
from service.spec import check_limits
from service.sweeps.pruning import should_prune
from service.sweeps.scheduler import advance_sweep
from workers import memory
from workers.celery_app import app
from workers.tracker import JobTracker, Pruned, retry_transient

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
    checkpoint = None  # a first attempt has none: only an attempt stores checkpoints
    if job.attempts > 1:
        checkpoint = retry_transient(sessions, lambda s: store.latest_checkpoint(s, job.id),
                                     f"job {job.id}: checkpoint")
    if checkpoint is not None:
        log.info("job %s: resuming after epoch %s", job.id, checkpoint.epoch)
        run.restore(nncore.state_from_bytes(checkpoint.state))
    prune = (lambda: should_prune(session, job)) if job.sweep_id is not None else None
    with JobTracker(sessions, job.id, owner, lease,
                    lambda: nncore.state_to_bytes(run.checkpoint()), prune=prune) as tracker:
        run.fit(on_iteration=tracker.on_iteration, on_epoch=tracker.on_epoch,
                should_stop=tracker.should_stop)
        last_epochs = tracker.hand_over_pending()
    # The stored model's epoch (the best by val_acc with train.keep_best, else the last) gives
    # its headline numbers, whichever attempt trained it: the checkpoint carries every row.
    metrics = run.model_metrics()
    metrics["epochs"] = run.epoch
    _finish(sessions, job.id, owner, run, metrics,
            lambda session: tracker.write_pending(session, last_epochs))


def _finish(sessions, job_id: int, owner: str, run, metrics: dict, last_epochs) -> None:
    """Store the last epochs' rows (``last_epochs(session)``) and the model in one
    transaction, retrying while the database is away. A commit whose answer was lost with
    the connection may have succeeded: a retry then finds the job no longer running, and a
    succeeded job is success, not a lost lease."""
    tries = 0

    def finish(session) -> None:
        nonlocal tries
        tries += 1
        try:
            finish_with_lineage(session, job_id, owner, run, metrics, settings().data_dir,
                                first=last_epochs)
        except store.LeaseLost:
            if tries == 1 or store.get_job(session, job_id).status != JobStatus.SUCCEEDED:
                raise

    retry_transient(sessions, finish, f"job {job_id}: model")


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
    try:
        job = retry_transient(sessions, lambda s: store.get_job(s, job_id), f"job {job_id}")
    except SQLAlchemyError:
        log.warning("job %s: not read back after %s", job_id, outcome, exc_info=True)
        return outcome, None
    return outcome, (job.sweep_id if job is not None else None)


def _claim_and_train(sessions, job_id: int) -> str:
    """Claim, train and end the attempt. Every write here survives a database blip: it is
    retried on a fresh session (``retry_transient``), so an outage during training costs the
    job neither its attempt nor its lease, only time."""
    owner, lease = worker_owner(), settings().lease_seconds
    job = retry_transient(sessions, lambda s: _claim(s, job_id, owner, lease),
                          f"job {job_id}: claim")
    if job is None:
        log.info("job %s: not claimable (running elsewhere or finished); dropped", job_id)
        return "dropped"
    log.info("job %s: claimed by %s (attempt %s, at most %s without progress)", job_id, owner,
             job.attempts, job.max_attempts)
    try:
        memory.limit_job(settings().worker_memory_mb)
        with sessions() as session:
            _train(session, sessions, job, owner, lease)
    except MemoryError as exc:  # beyond NNQ_WORKER_MEMORY_MB: a retry would fail the same way
        memory.lift()
        oom = memory.out_of_memory_reason(exc, job.spec, settings().worker_memory_mb)
        return _settle(sessions, job_id, JobStatus.FAILED,
                       lambda s: store.fail_job(s, job_id, oom, owner))
    except nncore.Cancelled:
        return _settle(sessions, job_id, JobStatus.CANCELLED,
                       lambda s: store.mark_cancelled(s, job_id, owner))
    except Pruned as exc:
        why = str(exc)
        log.info("job %s: %s", job_id, why)
        return _settle(sessions, job_id, JobStatus.PRUNED,
                       lambda s: store.mark_pruned(s, job_id, owner, why))
    except store.LeaseLost:
        log.warning("job %s: lease lost; another worker continues it", job_id)
        return "lost"
    except (nncore.DivergenceError, nncore.DataError, nncore.SpecError, JobRejected) as exc:
        reason = _REJECTED_AS.get(type(exc), "{}").format(exc)
        return _settle(sessions, job_id, JobStatus.FAILED,
                       lambda s: store.fail_job(s, job_id, reason, owner))
    except Exception as exc:
        log.exception("job %s: unexpected error", job_id)
        return _retry_or_fail(sessions, job, owner, f"{type(exc).__name__}: {exc}")
    log.info("job %s: succeeded", job_id)
    return JobStatus.SUCCEEDED


def _claim(session, job_id: int, owner: str, lease: float) -> Job | None:
    """``claim_job``; on a retry whose first try committed but lost its answer with the
    connection, the job is already ours."""
    job = store.claim_job(session, job_id, owner, lease)
    if job is None:
        current = store.get_job(session, job_id)
        if current is not None and current.lease_owner == owner:
            return current
    return job


_REJECTED_AS = {nncore.DivergenceError: "diverged (NaN/inf loss): {}",
                nncore.DataError: "data error: {}", nncore.SpecError: "invalid spec: {}"}


def _settle(sessions, job_id: int, outcome: str, write) -> str:
    """End the attempt with ``write``, retried while the database is away; if it stays away
    past NNQ_DB_RETRY_SECONDS the lease expires and the reconciler takes the job back."""
    try:
        retry_transient(sessions, write, f"job {job_id}: {outcome}")
    except SQLAlchemyError:
        log.exception("job %s: could not record %s; the reconciler takes it back when the "
                      "lease expires", job_id, outcome)
        return "stranded"
    return outcome


def _retry_or_fail(sessions, job: Job, owner: str, error: str) -> str:
    """Fail the job when it is out of attempts (``attempts.out_of_attempts``; this attempt
    counts unless it stored a new checkpoint), else hand it back to the queue with a delay."""
    def settle(session) -> str:
        reason = out_of_attempts(session, store.get_job(session, job.id))
        if reason:
            store.fail_job(session, job.id, f"unexpected error on attempt {job.attempts}: "
                                            f"{error}; {reason}", owner)
            return JobStatus.FAILED
        return "retry" if store.release_job(session, job.id, owner, error) else "lost"

    try:
        outcome = retry_transient(sessions, settle, f"job {job.id}: retry")
    except SQLAlchemyError:
        log.exception("job %s: could not hand it back; the reconciler takes it back when the "
                      "lease expires", job.id)
        return "stranded"
    if outcome == "retry":
        enqueue(job.id, job.device, countdown=RETRY_BASE_DELAY_S * 2 ** (job.attempts - 1))
    return outcome


@app.task(name=TRAIN_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def train_job(job_id: int) -> str:
    """Celery entry point: the message carries only the job id."""
    return run_job(int(job_id))
