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
- An adaptive strategy's trial (tpe, cmaes, gp) is chosen in that same transaction, from the
  trials so far (service.sweeps.choose), and its params and spec are written with its job id.
- Messages are sent only after the commit (the row is the truth; a lost message is re-sent by
  the reconciler's stale-queued pass).
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from nnq.status import JobStatus, SweepStatus
from service.db.jobs import DEFAULT_DEVICE, create_job, fail_job
from service.db.models import Job, Sweep, SweepTrial, utcnow
from service.db.scope import in_scope, transaction, transactional
from service.queue import enqueue
from service.sweeps.choose import choose
from service.sweeps.ranking import TrialResult, best
from service.sweeps.store import trial_results
from service.sweeps.study import split_params

log = logging.getLogger(__name__)


class TrialTaken(Exception):
    """Another caller gave a trial its job first; this round's transaction rolls back."""


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

    Call it outside any ``transaction`` scope: it commits (or rolls back) its own, and
    sends messages only after that commit.
    """
    if in_scope(session):
        raise RuntimeError("advance_sweep must commit before it enqueues; call it outside "
                           "a transaction scope")
    for job_id, device in _advance_locked(session, sweep_id):
        enqueue(job_id, device, broker_url=broker_url)


def advance_all(session: Session, *, broker_url: str | None = None) -> None:
    """``advance_sweep`` for every queued or running sweep (the reconciler's round).

    A database error on one sweep is logged and the others still advance.
    """
    for sweep_id in _live_sweep_ids(session):
        try:
            advance_sweep(session, sweep_id, broker_url=broker_url)
        except SQLAlchemyError:
            log.warning("sweep %s: advancing failed; the next round retries", sweep_id,
                        exc_info=True)


@transactional
def _live_sweep_ids(session: Session) -> list[int]:
    return list(session.scalars(
        select(Sweep.id).where(Sweep.status.in_(SweepStatus.LIVE)).order_by(Sweep.id)))


def _lock(session: Session, sweep_id: int) -> bool:
    """Touch the unfinished sweep's row: the lock every concurrent caller queues on."""
    return bool(session.execute(
        update(Sweep).where(Sweep.id == sweep_id, Sweep.status.in_(SweepStatus.LIVE))
        .values(updated_at=utcnow())).rowcount)


def _advance_locked(session: Session, sweep_id: int) -> list[tuple[int, str]]:
    """One transaction; returns ``(job id, device)`` of the jobs it created."""
    try:
        with transaction(session):
            if not _lock(session, sweep_id):
                return []
            sweep = session.get(Sweep, sweep_id, populate_existing=True)
            trials = list(session.scalars(
                select(SweepTrial).where(SweepTrial.sweep_id == sweep_id)
                .order_by(SweepTrial.index).execution_options(populate_existing=True)))
            created = _start_trials(session, sweep, trials)
            _record(session, sweep, trial_results(session, sweep), started=bool(created))
            return created
    except (TrialTaken, IntegrityError):  # another caller has the sweep in hand
        return []


def _start_trials(session: Session, sweep: Sweep,
                  trials: list[SweepTrial]) -> list[tuple[int, str]]:
    """Jobs for pending trials up to ``parallelism`` in flight; raises TrialTaken.

    A trial chosen now whose values give no valid spec gets a failed job (never queued) and
    leaves its slot to the next trial.
    """
    job_ids = [t.job_id for t in trials if t.job_id is not None]
    statuses = dict(session.execute(select(Job.id, Job.status).where(Job.id.in_(job_ids)))
                    .all()) if job_ids else {}
    live = sum(1 for status in statuses.values() if status in JobStatus.LIVE)
    room = max(0, int(sweep.request.get("parallelism") or 1) - live)
    created: list[tuple[int, str]] = []
    results: list[TrialResult] | None = None
    for trial in [t for t in trials if t.job_id is None]:
        if len(created) >= room:
            break
        params, spec, error = trial.params, dict(trial.spec), None
        chosen_now = not spec
        if chosen_now:
            results = trial_results(session, sweep) if results is None else results
            choice = choose(sweep.request, sweep.id, sweep.name, results, trial.index,
                            sweep.metric)
            params, spec, error = choice.params, choice.spec, choice.error
        job, _ = create_job(session, spec, device=str(spec.get("device") or DEFAULT_DEVICE),
                            name=str(spec.get("name") or f"{sweep.name}-t{trial.index}"),
                            sweep_id=sweep.id)
        taken = session.execute(
            update(SweepTrial).where(SweepTrial.id == trial.id, SweepTrial.job_id.is_(None))
            .values(job_id=job.id, **({"params": params, "spec": spec} if chosen_now else {}))
        ).rowcount
        if not taken:
            raise TrialTaken(f"sweep {sweep.id}: trial {trial.index} already has a job")
        if results is not None:  # the next trial chosen in this round sees this one
            plain, notes = split_params(params)
            results.append(TrialResult(index=trial.index, params=plain, job_id=job.id,
                                       status=JobStatus.FAILED if error else JobStatus.QUEUED,
                                       sampler_attrs=notes))
        if error:
            fail_job(session, job.id, error)
            continue
        created.append((job.id, job.device))
    return created


def _finished_status(results: list[TrialResult]) -> tuple[SweepStatus, str | None] | None:
    """``(status, error)`` once every trial's job is terminal, else None."""
    if not results or any(r.job_id is None or r.status not in JobStatus.FINISHED
                          for r in results):
        return None
    if any(r.status == JobStatus.SUCCEEDED for r in results):
        return SweepStatus.SUCCEEDED, None
    if all(r.status == JobStatus.FAILED for r in results):
        first = min(results, key=lambda r: r.index)
        return SweepStatus.FAILED, (f"all {len(results)} trials failed; trial {first.index}: "
                                    f"{first.error or 'no reason given'}")
    return (SweepStatus.SUCCEEDED,
            "no trial succeeded (every trial was pruned, cancelled or failed)")


def _record(session: Session, sweep: Sweep, results: list[TrialResult], *,
            started: bool) -> None:
    """Status, best job and finish time, written in the locked transaction."""
    top = best(results, sweep.metric)
    values: dict = {"best_job_id": top.job_id if top else None}
    if started and sweep.status == SweepStatus.QUEUED:
        values["status"] = SweepStatus.RUNNING
    finished = _finished_status(results)
    if finished is not None:
        values["status"], values["error"] = finished
        values["finished_at"] = utcnow()
    session.execute(update(Sweep).where(Sweep.id == sweep.id).values(**values))
