"""Sweeps: submit a search, read its ranked trials and plot, cancel it, promote its best model."""

from __future__ import annotations

from flask import Response
from flask_openapi3 import APIBlueprint, Tag

from nnq.status import SweepStatus
from service.api import API_PREFIX
from service.api.deps import db, setting
from service.api.schemas import SubmitHeaders, dump
from service.api.sweep_schemas import (
    PromoteIn,
    PromoteOut,
    SweepList,
    SweepOut,
    SweepPath,
    SweepQuery,
    SweepSummary,
)
from service.db import Sweep
from service.errors import Conflict, ErrorResponse, NotFound, error_responses
from service.sweeps import store
from service.sweeps.plots import sweep_png
from service.sweeps.ranking import counts
from service.sweeps.scheduler import advance_sweep
from service.sweeps.validate import SweepRequest, plan_sweep

bp = APIBlueprint("sweeps", __name__, url_prefix=f"{API_PREFIX}/sweeps",
                  abp_tags=[Tag(name="sweeps", description="hyperparameter searches")],
                  abp_responses=error_responses())
MUTATING = [{"bearer": []}]
PNG = {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
       "description": "the metric over the two most important parameters; top trials' curves"}


def _summary_fields(sweep: Sweep, trial_counts: dict) -> dict:
    fields = ("id", "name", "status", "metric", "best_job_id", "error", "created_at",
              "updated_at", "finished_at")
    return {**{f: getattr(sweep, f) for f in fields},
            "strategy": sweep.request.get("strategy", "random"), "counts": trial_counts}


def sweep_dict(sweep: Sweep) -> dict:
    """The sweep resource: status, counts, trials ranked by the metric, the best trial."""
    ranked, best = store.ranked(db(), sweep)
    out = {**_summary_fields(sweep, counts(ranked)),
           "trials": [t.as_dict() for t in ranked],
           "best": best.as_dict() if best else None, "request": sweep.request}
    return dump(SweepOut, out)


def _sweep_or_404(sweep_id: int) -> Sweep:
    sweep = store.get_sweep(db(), sweep_id)
    if sweep is None:
        raise NotFound(f"sweep_id: no sweep {sweep_id}")
    return sweep


@bp.post("", responses={200: SweepOut, 202: SweepOut, 409: ErrorResponse}, security=MUTATING)
def submit_sweep(body: SweepRequest, header: SubmitHeaders):
    """Validate the search and every trial's spec, store the sweep with all its trials, and
    start the first ``parallelism`` of them; 202 (200 with the earlier sweep on a repeated
    Idempotency-Key)."""
    plan = plan_sweep(body)
    sweep, created = store.create_sweep(db(), plan, header.idempotency_key)
    if not created:
        if sweep.request != plan.request:
            raise Conflict("Idempotency-Key: already used for a different sweep",
                           details={"sweep_id": sweep.id})
        return sweep_dict(sweep), 200
    advance_sweep(db(), sweep.id, broker_url=setting("NNQ_BROKER_URL"))
    return sweep_dict(_sweep_or_404(sweep.id)), 202


@bp.get("", responses={200: SweepList})
def list_sweeps(query: SweepQuery):
    """Sweeps, newest first, with their trial counts."""
    sweeps, total = store.list_sweeps(db(), query.status, query.limit, query.offset)
    by_id = store.trial_counts(db(), sweeps)
    items = [dump(SweepSummary, _summary_fields(s, by_id[s.id])) for s in sweeps]
    return {"items": items, "total": total, "limit": query.limit, "offset": query.offset}


@bp.get("/<int:sweep_id>", responses={200: SweepOut})
def read_sweep(path: SweepPath):
    """One sweep: status, counts by trial status, the trials best first, the best trial."""
    return sweep_dict(_sweep_or_404(path.sweep_id))


@bp.get("/<int:sweep_id>/plot.png", responses={200: PNG})
def sweep_plot(path: SweepPath):
    """The lecture's figure: the metric over the two most important parameters (log axes for
    log-scale ones) and the per-epoch val_acc of the top trials."""
    sweep = _sweep_or_404(path.sweep_id)
    ranked, _ = store.ranked(db(), sweep)
    png = sweep_png(sweep.request["space"], ranked, sweep.metric,
                    title=f"sweep {sweep.id}: {sweep.name}")
    return Response(png, mimetype="image/png", headers={"Cache-Control": "no-store"})


@bp.post("/<int:sweep_id>/cancel", responses={200: SweepOut, 409: ErrorResponse},
         security=MUTATING)
def cancel_sweep(path: SweepPath):
    """Cancel: the sweep ends ``cancelled``, queued trials at once, running ones are stopped
    by their workers between iterations, pending ones never start; 409 if already finished."""
    sweep = _sweep_or_404(path.sweep_id)
    if sweep.is_terminal:
        raise Conflict(f"sweep {sweep.id} is already {sweep.status}")
    sweep = store.request_cancel_sweep(db(), sweep.id)
    if sweep.status != SweepStatus.CANCELLED:
        raise Conflict(f"sweep {sweep.id} is already {sweep.status}")
    return sweep_dict(sweep)


@bp.post("/<int:sweep_id>/promote", responses={200: PromoteOut, 409: ErrorResponse},
         security=MUTATING)
def promote_sweep(path: SweepPath, body: PromoteIn):
    """Point an alias at the best succeeded trial's model (409 while there is none)."""
    sweep = _sweep_or_404(path.sweep_id)
    try:
        alias = store.promote(db(), sweep.id, body.alias)
    except store.NoBestModel as exc:
        raise Conflict(str(exc)) from None
    _, best = store.ranked(db(), sweep)
    return dump(PromoteOut, {"alias": alias.name, "model_id": alias.model_id,
                             "sweep_id": sweep.id, "trial": best.as_dict(),
                             "updated_at": alias.updated_at})
