"""Sweeps in the store: create (the sweep and all its trials at once), read, cancel, promote.

Like service.db.jobs, each function is one short transaction on the given session
(``service.db.scope``). The trial rows are the plan; their jobs are made later by the
scheduler, one per trial. An adaptive strategy's trial row starts with empty params and
spec: the scheduler fills them when it chooses the trial, in the transaction that makes its job.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from nnq.status import TRIAL_PENDING, TRIAL_STATUSES, JobStatus, SweepStatus
from service.db.idempotent import create_once
from service.db.jobs import request_cancel
from service.db.model_store import set_alias
from service.db.models import (
    METRIC_FIELDS,
    Alias,
    EpochMetric,
    Job,
    Model,
    Sweep,
    SweepTrial,
    utcnow,
)
from service.db.paging import DEFAULT_PAGE_SIZE, newest_first
from service.db.scope import transactional
from service.sweeps.ranking import TrialResult, best, rank
from service.sweeps.study import split_params
from service.sweeps.validate import SweepPlan, plan_sweep


class NoBestModel(LookupError):
    """Promote found no succeeded trial with a stored model (yet)."""


def _new_sweep(request: Any) -> Sweep:
    plan = request if isinstance(request, SweepPlan) else plan_sweep(request)
    return Sweep(name=plan.request["name"], status=SweepStatus.QUEUED, request=plan.request,
                 metric=plan.request["metric"],
                 trials=[SweepTrial(index=i, params=p, spec=s)
                         for i, (p, s) in enumerate(zip(plan.params, plan.specs, strict=True))])


def create_sweep(session: Session, request: Any, idempotency_key: str | None = None
                 ) -> tuple[Sweep, bool]:
    """Validate ``request`` (raw, SweepRequest or SweepPlan) and insert the sweep with every
    trial row in one transaction. Returns ``(sweep, created)``; a known ``idempotency_key``
    returns that sweep unchanged. Raises SweepInvalid before writing anything.
    """
    return create_once(session, Sweep, idempotency_key, lambda: _new_sweep(request))


@transactional
def get_sweep(session: Session, sweep_id: int) -> Sweep | None:
    """The sweep as stored now (bypassing the session's identity map)."""
    return session.get(Sweep, sweep_id, populate_existing=True)


@transactional
def list_sweeps(session: Session, status: str | None = None,
                limit: int = DEFAULT_PAGE_SIZE, offset: int = 0) -> tuple[list[Sweep], int]:
    """A page of sweeps, newest first, and the total matching ``status``."""
    return newest_first(session, Sweep, [Sweep.status == status] if status else [], limit,
                        offset)


def _no_job_status(sweep: Sweep) -> str:
    """A trial without a job never starts once its sweep is cancelled."""
    return JobStatus.CANCELLED if sweep.status == SweepStatus.CANCELLED else TRIAL_PENDING


@transactional
def trial_results(session: Session, sweep: Sweep) -> list[TrialResult]:
    """Every trial with its job's status, error, model and per-epoch metrics, by index."""
    rows = session.execute(
        select(SweepTrial.index, SweepTrial.params, SweepTrial.job_id, Job.status, Job.error,
               Job.model_id, Model.metrics)
        .outerjoin(Job, Job.id == SweepTrial.job_id)
        .outerjoin(Model, Model.id == Job.model_id)
        .where(SweepTrial.sweep_id == sweep.id).order_by(SweepTrial.index)).all()
    curves: dict[int, list[dict]] = defaultdict(list)
    job_ids = [r.job_id for r in rows if r.job_id is not None]
    if job_ids:
        columns = [EpochMetric.job_id, EpochMetric.epoch,
                   *(getattr(EpochMetric, f) for f in METRIC_FIELDS)]
        for row in session.execute(select(*columns).where(EpochMetric.job_id.in_(job_ids))
                                   .order_by(EpochMetric.job_id, EpochMetric.epoch)):
            curves[row.job_id].append({k: v for k, v in row._mapping.items() if k != "job_id"})
    out = []
    for r in rows:
        params, notes = split_params(r.params or {})
        out.append(TrialResult(index=r.index, params=params, job_id=r.job_id,
                               status=r.status or _no_job_status(sweep), error=r.error,
                               model_id=r.model_id, curve=curves.get(r.job_id, []),
                               chosen=bool(params) or r.job_id is not None,
                               sampler_attrs=notes, model_metrics=r.metrics or {}))
    return out


@transactional
def trial_counts(session: Session, sweeps: list[Sweep]) -> dict[int, dict[str, int]]:
    """``{sweep id: counts by trial status}`` in one grouped query (for lists)."""
    out = {s.id: {**dict.fromkeys(TRIAL_STATUSES, 0), "total": 0} for s in sweeps}
    by_id = {s.id: s for s in sweeps}
    rows = session.execute(
        select(SweepTrial.sweep_id, Job.status, func.count())
        .outerjoin(Job, Job.id == SweepTrial.job_id)
        .where(SweepTrial.sweep_id.in_(list(out))).group_by(SweepTrial.sweep_id, Job.status))
    for sweep_id, status, n in rows:
        out[sweep_id][status or _no_job_status(by_id[sweep_id])] += n
        out[sweep_id]["total"] += n
    return out


@transactional
def request_cancel_sweep(session: Session, sweep_id: int) -> Sweep | None:
    """End the sweep ``cancelled`` and cancel its live trial jobs (queued ones at once,
    running ones flagged for their workers). Pending trials never get a job: the sweep row is
    updated first, in the same transaction, and the scheduler leaves cancelled sweeps alone.
    A finished sweep is returned unchanged; None if unknown.
    """
    now = utcnow()
    session.execute(
        update(Sweep).where(Sweep.id == sweep_id, Sweep.status.in_(SweepStatus.LIVE))
        .values(status=SweepStatus.CANCELLED, finished_at=now, updated_at=now))
    sweep = get_sweep(session, sweep_id)
    if sweep is None or sweep.status != SweepStatus.CANCELLED:
        return sweep
    cancel_trial_jobs(session, sweep_id)
    return get_sweep(session, sweep_id)


@transactional
def cancel_trial_jobs(session: Session, sweep_id: int) -> list[int]:
    """Request cancel of every queued or running job of the sweep; returns their ids."""
    job_ids = list(session.scalars(
        select(Job.id).join(SweepTrial, SweepTrial.job_id == Job.id)
        .where(SweepTrial.sweep_id == sweep_id, Job.status.in_(JobStatus.LIVE))))
    for job_id in job_ids:
        request_cancel(session, job_id)
    return job_ids


@transactional
def ranked(session: Session, sweep: Sweep) -> tuple[list[TrialResult], TrialResult | None]:
    """The trials best first by the sweep's metric, and the best succeeded one."""
    trials = trial_results(session, sweep)
    return rank(trials, sweep.metric), best(trials, sweep.metric)


@transactional
def promote(session: Session, sweep_id: int, alias: str) -> Alias:
    """Point ``alias`` at the best trial's model. Raises LookupError: NoBestModel when no
    succeeded trial has a model yet (KeyError for an unknown sweep)."""
    sweep = get_sweep(session, sweep_id)
    if sweep is None:
        raise KeyError(sweep_id)
    _, top = ranked(session, sweep)
    if top is None or top.model_id is None:
        raise NoBestModel(f"sweep {sweep_id} has no succeeded trial with a model yet")
    return set_alias(session, alias, top.model_id)
