"""The sweep scheduler: turn pending trials into jobs, finish the sweep, record its best.

There is no scheduler process: ``advance_sweep`` is a plain function that the API calls once
after accepting a sweep, a worker calls after each trial job ends, and every worker's
reconciler thread calls (through ``advance_all``) each round. So it must be idempotent and
safe when several processes run it at once:

- Each call is one transaction that starts by touching the sweep row
  (``UPDATE sweeps ... WHERE status IN (queued, running)``). That takes the row lock on
  PostgreSQL and the database's write lock on SQLite, so concurrent calls for one sweep run one
  after another and each sees what the previous one committed; a cancelled or finished sweep
  matches no row and the call does nothing.
- A trial is taken by ``UPDATE sweep_trials SET job_id=:new WHERE id=:t AND job_id IS NULL``
  in the transaction that inserted the job; if it updates no row the whole transaction rolls
  back, so a trial never gets a second job even without the lock (``job_id`` is also unique).
- Messages are sent only after the commit (the row is the truth; a lost message is re-sent by
  the reconciler's stale-queued pass).
"""

from __future__ import annotations

import logging
import os

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from service.config import DEFAULT_BROKER_URL
from service.db.jobs import DEFAULT_MAX_ATTEMPTS, MAX_ATTEMPTS_ENV
from service.db.models import TERMINAL_STATUSES, Job, Sweep, SweepTrial, utcnow
from service.queue import enqueue_job
from service.sweeps.ranking import TrialResult, best
from service.sweeps.store import trial_results

log = logging.getLogger(__name__)

UNFINISHED = ("queued", "running")
LIVE_JOB_STATUSES = ("queued", "running")
BROKER_URL_ENV = "NNQ_BROKER_URL"


def default_broker_url() -> str:
    return os.environ.get(BROKER_URL_ENV) or DEFAULT_BROKER_URL


def advance_sweep(session: Session, sweep_id: int, *, broker_url: str | None = None) -> None:
    """Bring one sweep forward; call it as often as you like, from any process.

    - Creates jobs for pending trials (lowest index first) until ``parallelism`` trial jobs
      are queued or running, and enqueues them after the commit (``service.queue``).
    - The sweep becomes ``running`` when its first trial jobs are created.
    - ``best_job_id`` follows the succeeded trial with the highest metric (its last epoch's
      value, ties to the lower index); pruned trials have no model, so they are never best.
    - When every trial's job is terminal the sweep ends ``succeeded``, or ``failed`` only if no
      trial succeeded and every trial failed (pruned or cancelled trials alone do not fail a
      sweep; its ``error`` then says that no trial succeeded).
    - A cancelled or finished sweep is left alone.

    Call it with no transaction open on ``session``; it commits (or rolls back) its own.
    """
    created = _advance_locked(session, sweep_id)
    url = broker_url or default_broker_url()
    for job_id, device in created:
        enqueue_job(url, job_id, device)


def advance_all(session: Session, *, broker_url: str | None = None) -> None:
    """``advance_sweep`` for every queued or running sweep (the reconciler's round).

    A database error on one sweep is logged and the others still advance.
    """
    sweep_ids = list(session.scalars(
        select(Sweep.id).where(Sweep.status.in_(UNFINISHED)).order_by(Sweep.id)))
    session.commit()
    for sweep_id in sweep_ids:
        try:
            advance_sweep(session, sweep_id, broker_url=broker_url)
        except SQLAlchemyError:
            log.warning("sweep %s: advancing failed; the next round retries", sweep_id,
                        exc_info=True)
            session.rollback()


def _lock(session: Session, sweep_id: int) -> bool:
    """Touch the unfinished sweep's row: the lock every concurrent caller queues on."""
    return bool(session.execute(
        update(Sweep).where(Sweep.id == sweep_id, Sweep.status.in_(UNFINISHED))
        .values(updated_at=utcnow())).rowcount)


def _advance_locked(session: Session, sweep_id: int) -> list[tuple[int, str]]:
    """One transaction; returns ``(job id, device)`` of the jobs it created."""
    try:
        if not _lock(session, sweep_id):
            session.rollback()
            return []
        sweep = session.get(Sweep, sweep_id, populate_existing=True)
        trials = list(session.scalars(
            select(SweepTrial).where(SweepTrial.sweep_id == sweep_id)
            .order_by(SweepTrial.index).execution_options(populate_existing=True)))
        created = _start_trials(session, sweep, trials)
        if created is None:
            session.rollback()
            return []
        results = trial_results(session, sweep)
        _record(session, sweep, results, started=bool(created))
        session.commit()
    except IntegrityError:  # another caller took a trial first: it has the sweep in hand
        session.rollback()
        return []
    return created


def _max_attempts() -> int:
    return int(os.environ.get(MAX_ATTEMPTS_ENV) or DEFAULT_MAX_ATTEMPTS)


def _start_trials(session: Session, sweep: Sweep,
                  trials: list[SweepTrial]) -> list[tuple[int, str]] | None:
    """Jobs for pending trials up to ``parallelism`` in flight; None if a trial was taken."""
    job_ids = [t.job_id for t in trials if t.job_id is not None]
    statuses = dict(session.execute(select(Job.id, Job.status).where(Job.id.in_(job_ids)))
                    .all()) if job_ids else {}
    live = sum(1 for status in statuses.values() if status in LIVE_JOB_STATUSES)
    room = max(0, int(sweep.request.get("parallelism") or 1) - live)
    created = []
    for trial in [t for t in trials if t.job_id is None][:room]:
        spec = dict(trial.spec)
        device = str(spec.get("device") or "cpu")
        job = Job(name=str(spec.get("name") or f"{sweep.name}-t{trial.index}"), status="queued",
                  spec=spec, device=device, max_attempts=_max_attempts(), sweep_id=sweep.id)
        session.add(job)
        session.flush()
        taken = session.execute(
            update(SweepTrial).where(SweepTrial.id == trial.id, SweepTrial.job_id.is_(None))
            .values(job_id=job.id)).rowcount
        if not taken:
            return None
        created.append((job.id, device))
    return created


def _finished_status(results: list[TrialResult]) -> tuple[str, str | None] | None:
    """``(status, error)`` once every trial's job is terminal, else None."""
    if not results or any(r.job_id is None or r.status not in TERMINAL_STATUSES
                          for r in results):
        return None
    if any(r.status == "succeeded" for r in results):
        return "succeeded", None
    if all(r.status == "failed" for r in results):
        first = min(results, key=lambda r: r.index)
        return "failed", (f"all {len(results)} trials failed; trial {first.index}: "
                          f"{first.error or 'no reason given'}")
    return "succeeded", "no trial succeeded (every trial was pruned, cancelled or failed)"


def _record(session: Session, sweep: Sweep, results: list[TrialResult], *,
            started: bool) -> None:
    """Status, best job and finish time, written in the locked transaction."""
    top = best(results, sweep.metric)
    values: dict = {"best_job_id": top.job_id if top else None}
    if started and sweep.status == "queued":
        values["status"] = "running"
    finished = _finished_status(results)
    if finished is not None:
        values["status"], values["error"] = finished
        values["finished_at"] = utcnow()
    session.execute(update(Sweep).where(Sweep.id == sweep.id).values(**values))
