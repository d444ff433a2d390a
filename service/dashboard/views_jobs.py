"""Pages about jobs: the list (``/``), one job (``/jobs/<id>``) and the comparison."""

from __future__ import annotations

from flask import abort, render_template, request

import nncore
from nnq.status import JobStatus
from service.api.deps import db
from service.dashboard.blueprint import bp
from service.dashboard.job_rows import job_page
from service.dashboard.paging import Pager
from service.dashboard.queries import JobFilters, compared_ids, known_id, page_number
from service.dashboard.spec_diff import differing
from service.dashboard.twins import twins
from service.db import Job
from service.db import jobs as job_store

JOBS_PER_PAGE = 20


def _job_or_404(job_id: int) -> Job:
    job = job_store.get_job(db(), known_id(job_id))
    if job is None:
        abort(404, f"no job {job_id}")
    return job


def expanded_layers(spec: dict) -> tuple[list[dict], str | None]:
    """The layer list the spec expands to, or the reason it does not expand."""
    try:
        return nncore.parse_spec(spec).layers, None
    except (nncore.SpecError, ValueError, TypeError) as exc:
        return [], str(exc)


@bp.get("/")
def jobs():
    """Every job, newest first, a page at a time; the script keeps live rows current."""
    filters = JobFilters.from_args(request.args)
    number = page_number(request.args)
    rows, total = job_page(db(), filters, JOBS_PER_PAGE, Pager.offset_of(number, JOBS_PER_PAGE))
    return render_template("jobs.html", rows=rows, filters=filters, statuses=list(JobStatus),
                           pager=Pager(number, JOBS_PER_PAGE, total))


@bp.get("/jobs/<int:job_id>")
def job(job_id: int):
    """One job: spec, layers, timeline, error, metrics; charts and cancel in the script."""
    found = _job_or_404(job_id)
    layers, layers_error = expanded_layers(found.spec)
    return render_template("job.html", job=found, layers=layers, layers_error=layers_error,
                           metrics=job_store.epoch_metrics(db(), found.id),
                           twins=twins(db(), found), live=found.status in JobStatus.LIVE)


@bp.get("/compare")
def compare():
    """Jobs side by side: the script overlays their curves; the spec fields that differ."""
    found = [_job_or_404(job_id) for job_id in compared_ids(request.args)]
    diff = differing([j.spec for j in found]) if len(found) > 1 else []
    return render_template("compare.html", jobs=found, diff=diff)
