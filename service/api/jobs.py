"""Jobs: submit a spec, list and read jobs, their metrics, curves and run records, cancel."""

from __future__ import annotations

from flask import Response
from flask_openapi3 import APIBlueprint, Tag

from nnq.status import JobStatus
from service.api import API_PREFIX
from service.api.deps import db, setting
from service.api.quota import check_queue_room
from service.api.run_schemas import ActivationsOut, AttemptsOut, LossesOut
from service.api.schemas import (
    JobList,
    JobOut,
    JobPath,
    JobQuery,
    MetricsOut,
    SubmitHeaders,
    dump,
)
from service.db import Job, records
from service.db import jobs as store
from service.db.attempts import job_attempts
from service.errors import Conflict, ErrorResponse, NotFound, error_responses
from service.plots import curves_png
from service.queue import enqueue
from service.spec import JobSpec, check_limits

bp = APIBlueprint("jobs", __name__, url_prefix=f"{API_PREFIX}/jobs",
                  abp_tags=[Tag(name="jobs", description="training runs")],
                  abp_responses=error_responses())
MUTATING = [{"bearer": []}]
PNG = {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
       "description": "accuracy per epoch"}


def job_dict(job: Job) -> dict:
    """The job resource (docs/design.md), progress grouped as the API shows it."""
    fields = ("id", "name", "status", "device", "attempts", "max_attempts", "error", "model_id",
              "sweep_id", "cancel_requested", "spec", "created_at", "started_at", "finished_at",
              "updated_at")
    out = {f: getattr(job, f) for f in fields}
    out["progress"] = {"epoch": job.epoch, "iteration": job.iteration,
                       "total_iterations": job.total_iterations}
    return dump(JobOut, out)


def _job_or_404(job_id: int) -> Job:
    job = store.get_job(db(), job_id)
    if job is None:
        raise NotFound(f"job_id: no job {job_id}")
    return job


@bp.post("", responses={200: JobOut, 202: JobOut, 409: ErrorResponse, 429: ErrorResponse},
         security=MUTATING)
def submit_job(body: JobSpec, header: SubmitHeaders):
    """Submit a training spec; 202 with the queued job (200 with the earlier job on a repeated
    Idempotency-Key; 429 while NNQ_MAX_QUEUED_PER_TOKEN jobs are queued)."""
    check_limits(body)
    check_queue_room(idempotency_key=header.idempotency_key)
    document = body.document()
    model = document["model"]
    name = body.name or f"{document['data']['dataset']}-{model.get('preset', 'layers')}"
    job, created = store.create_job(db(), document, device=body.device,
                              idempotency_key=header.idempotency_key, name=name)
    if not created:
        if job.spec != document:
            raise Conflict("Idempotency-Key: already used for a different spec",
                           details={"job_id": job.id})
        return job_dict(job), 200
    enqueue(job.id, job.device, broker_url=setting("NNQ_BROKER_URL"))
    return job_dict(job), 202


@bp.get("", responses={200: JobList})
def list_jobs(query: JobQuery):
    """Jobs, newest first, filtered by status and name."""
    jobs, total = store.list_jobs(db(), query.status, query.name, query.limit, query.offset,
                                  sweep_id=query.sweep_id)
    return {"items": [job_dict(j) for j in jobs], "total": total, "limit": query.limit,
            "offset": query.offset}


@bp.get("/<int:job_id>", responses={200: JobOut})
def read_job(path: JobPath):
    """One job: status, progress, attempts, error and the model it produced."""
    return job_dict(_job_or_404(path.job_id))


@bp.get("/<int:job_id>/metrics", responses={200: MetricsOut})
def job_metrics(path: JobPath):
    """One row per finished epoch: train loss/accuracy, val and test accuracy, seconds."""
    _job_or_404(path.job_id)
    return dump(MetricsOut, {"job_id": path.job_id,
                             "items": store.epoch_metrics(db(), path.job_id)})


@bp.get("/<int:job_id>/curves.png", responses={200: PNG})
def job_curves(path: JobPath):
    """The lecture's figure: train/val/test accuracy per epoch."""
    job = _job_or_404(path.job_id)
    rows = dump(MetricsOut, {"job_id": job.id,
                             "items": store.epoch_metrics(db(), job.id)})["items"]
    png = curves_png(rows, title=f"job {job.id}: {job.name}")
    return Response(png, mimetype="image/png", headers={"Cache-Control": "no-store"})


@bp.get("/<int:job_id>/losses", responses={200: LossesOut})
def job_losses(path: JobPath):
    """The per-iteration training loss, every ``every``-th iteration plus each epoch's last
    (a job keeps about 2,000 points); written when each epoch ends."""
    job = _job_or_404(path.job_id)
    return dump(LossesOut, {"job_id": job.id, "every": records.loss_every(job),
                            "items": records.iteration_losses(db(), job.id)})


@bp.get("/<int:job_id>/activations", responses={200: ActivationsOut})
def job_activations(path: JobPath):
    """Per epoch and layer (all but the logits): mean, std and histogram of the layer's
    eval-mode output on a fixed probe batch, as in the lecture's weight-init figures."""
    job = _job_or_404(path.job_id)
    rows = records.activation_stats(db(), job.id)
    return dump(ActivationsOut, {"job_id": job.id,
                                 "probe_size": rows[0].probe_size if rows else 0,
                                 "items": rows})


@bp.get("/<int:job_id>/attempts", responses={200: AttemptsOut})
def job_attempt_list(path: JobPath):
    """The job's timeline: each attempt's worker, start, resume epoch, end and outcome."""
    job = _job_or_404(path.job_id)
    return dump(AttemptsOut, {"job_id": job.id, "items": job_attempts(db(), job.id)})


@bp.post("/<int:job_id>/cancel", responses={200: JobOut, 202: JobOut, 409: ErrorResponse},
         security=MUTATING)
def cancel_job(path: JobPath):
    """Cancel: a queued job ends at once (200); a running one is flagged and its worker stops
    it between iterations (202); a finished job cannot be cancelled (409)."""
    job = _job_or_404(path.job_id)
    if job.is_terminal:
        raise Conflict(f"job {job.id} is already {job.status}")
    job = store.request_cancel(db(), job.id)
    if job.is_terminal and job.status != JobStatus.CANCELLED:
        raise Conflict(f"job {job.id} is already {job.status}")
    return job_dict(job), (200 if job.is_terminal else 202)
