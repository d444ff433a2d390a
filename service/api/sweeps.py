"""Sweeps: submit a search, read its ranked trials, its importances, history and parallel
coordinates (JSON and PNG), cancel it, promote its best model."""

from __future__ import annotations

from flask import Response
from flask_openapi3 import APIBlueprint, Tag

from nnq.status import SweepStatus
from service.api import API_PREFIX
from service.api.deps import db, setting
from service.api.quota import check_queue_room
from service.api.schemas import SubmitHeaders, dump
from service.api.sweep_schemas import (
    HistoryOut,
    ImportancesOut,
    ParallelOut,
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
from service.sweeps import insights, store
from service.sweeps.plots import history_png, importances_png, parallel_png, sweep_png
from service.sweeps.ranking import counts
from service.sweeps.scheduler import advance_sweep
from service.sweeps.validate import SweepRequest, plan_sweep

bp = APIBlueprint("sweeps", __name__, url_prefix=f"{API_PREFIX}/sweeps",
                  abp_tags=[Tag(name="sweeps", description="hyperparameter searches")],
                  abp_responses=error_responses())
MUTATING = [{"bearer": []}]
PNG_CONTENT = {"image/png": {"schema": {"type": "string", "format": "binary"}}}
PNG = {"content": PNG_CONTENT,
       "description": "the metric over the two most important parameters; top trials' curves"}
IMPORTANCES_PNG = {"content": PNG_CONTENT, "description": "parameter importances as bars"}
HISTORY_PNG = {"content": PNG_CONTENT, "description": "each trial's metric and the best so far"}
PARALLEL_PNG = {"content": PNG_CONTENT,
                "description": "one line per succeeded trial across the parameters' axes"}


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


@bp.post("", responses={200: SweepOut, 202: SweepOut, 409: ErrorResponse, 429: ErrorResponse},
         security=MUTATING)
def submit_sweep(body: SweepRequest, header: SubmitHeaders):
    """Validate the search and every trial's spec, store the sweep with all its trials, and
    start the first ``parallelism`` of them; 202 (200 with the earlier sweep on a repeated
    Idempotency-Key)."""
    plan = plan_sweep(body)
    check_queue_room(body.parallelism, idempotency_key=header.idempotency_key, kind=Sweep)
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


def _png(png: bytes) -> Response:
    return Response(png, mimetype="image/png", headers={"Cache-Control": "no-store"})


def _title(sweep: Sweep) -> str:
    return f"sweep {sweep.id}: {sweep.name}"


@bp.get("/<int:sweep_id>/plot.png", responses={200: PNG})
def sweep_plot(path: SweepPath):
    """The lecture's figure: the metric over the two most important parameters (log axes for
    log-scale ones) and the per-epoch val_acc of the top trials."""
    sweep = _sweep_or_404(path.sweep_id)
    ranked, _ = store.ranked(db(), sweep)
    space = sweep.request["space"]
    order = insights.ordered_paths(space, insights.importances(space, ranked, sweep.metric,
                                                               sweep.id))
    return _png(sweep_png(space, ranked, sweep.metric, title=_title(sweep), paths=order))


def _importances(sweep: Sweep) -> dict:
    results = store.trial_results(db(), sweep)
    found = insights.importances(sweep.request["space"], results, sweep.metric, sweep.id)
    return dump(ImportancesOut, {"sweep_id": sweep.id, "metric": sweep.metric, **found})


@bp.get("/<int:sweep_id>/importances", responses={200: ImportancesOut})
def sweep_importances(path: SweepPath):
    """Which searched parameter mattered: Optuna's PED-ANOVA importances over the succeeded
    trials, summing to 1, most important first (empty, with a note, before two succeeded)."""
    return _importances(_sweep_or_404(path.sweep_id))


@bp.get("/<int:sweep_id>/importances.png", responses={200: IMPORTANCES_PNG})
def sweep_importances_png(path: SweepPath):
    """The importances as horizontal bars."""
    sweep = _sweep_or_404(path.sweep_id)
    return _png(importances_png(_importances(sweep), title=_title(sweep)))


def _history(sweep: Sweep) -> dict:
    points = insights.history(store.trial_results(db(), sweep), sweep.metric)
    return dump(HistoryOut, {"sweep_id": sweep.id, "metric": sweep.metric, "points": points})


@bp.get("/<int:sweep_id>/history", responses={200: HistoryOut})
def sweep_history(path: SweepPath):
    """The optimization history: each succeeded trial's metric by index and the best so far."""
    return _history(_sweep_or_404(path.sweep_id))


@bp.get("/<int:sweep_id>/history.png", responses={200: HISTORY_PNG})
def sweep_history_png(path: SweepPath):
    """The optimization history drawn: trials as points, the best so far as a step line."""
    sweep = _sweep_or_404(path.sweep_id)
    return _png(history_png(_history(sweep)["points"], sweep.metric, title=_title(sweep)))


def _parallel(sweep: Sweep) -> dict:
    space = sweep.request["space"]
    results = store.trial_results(db(), sweep)
    data = insights.parallel_coordinates(space, results, sweep.metric)
    data["params"] = insights.ordered_paths(
        space, insights.importances(space, results, sweep.metric, sweep.id))
    return dump(ParallelOut, {"sweep_id": sweep.id, "metric": sweep.metric, **data})


@bp.get("/<int:sweep_id>/parallel-coordinates", responses={200: ParallelOut})
def sweep_parallel(path: SweepPath):
    """Parallel coordinates: each succeeded trial's params and metric; the axes are the
    searched paths, most important first."""
    return _parallel(_sweep_or_404(path.sweep_id))


@bp.get("/<int:sweep_id>/parallel-coordinates.png", responses={200: PARALLEL_PNG})
def sweep_parallel_png(path: SweepPath):
    """The parallel coordinates drawn, each line coloured by the metric."""
    sweep = _sweep_or_404(path.sweep_id)
    return _png(parallel_png(sweep.request["space"], _parallel(sweep), sweep.metric,
                             title=_title(sweep)))


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
