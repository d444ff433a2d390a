"""Following a job or a sweep until it ends (a live bar), then reporting it: the tables and
the verdict, with a non-zero exit when it did not succeed. Used by `nnq submit --wait`,
`nnq sweep --wait`, `nnq sweep show` and `nnq demo`."""

from __future__ import annotations

from typing import Any

from nnq import sweep_view
from nnq.client import Api, items
from nnq.status import JobStatus, SweepStatus
from nnq.tables import metrics_table
from nnq.terminal import console, fail, say, watch


def watch_job(api: Api, job_id: Any) -> dict:
    """Poll a job with a live progress bar of its iterations until it is finished."""
    def fetch():
        job = api.get(f"/jobs/{job_id}")
        progress = job.get("progress") or {}
        epochs = ((job.get("spec") or {}).get("train") or {}).get("epochs")
        detail = f"{job['status']}  epoch {progress.get('epoch') or 0}/{epochs or '?'}"
        return (job, progress.get("iteration") or 0, progress.get("total_iterations"), detail,
                job["status"] in JobStatus.FINISHED)

    return watch(f"job {job_id}", fetch)


def report_job(api: Api, job: dict) -> None:
    """Print a finished job's metrics; exit non-zero with the reason unless it succeeded."""
    rows = items(api.get(f"/jobs/{job['id']}/metrics"))
    if rows:
        console.print(metrics_table(rows))
    if job["status"] != JobStatus.SUCCEEDED:
        reason = job.get("error") or "no reason given"
        raise fail(f"job {job['id']} {job['status']}: {reason}")
    console.print(f"job {job['id']} succeeded; model [bold]{job.get('model_id')}[/]")


def watch_sweep(api: Api, sweep_id: Any) -> dict:
    """Poll a sweep with a live bar of finished trials until the sweep ends."""
    def fetch():
        sweep = api.get(f"/sweeps/{sweep_id}")
        done, total, detail = sweep_view.progress(sweep)
        return sweep, done, total, detail, sweep["status"] in SweepStatus.FINISHED

    return watch(f"sweep {sweep_id}", fetch)


def report_sweep(sweep: dict, *, require_success: bool = False) -> None:
    """The ranked table and the best trial; with ``require_success`` (after --wait) exit
    non-zero when the sweep failed or was cancelled."""
    console.print(sweep_view.ranked_table(sweep))
    say(f"sweep {sweep['id']} {sweep['status']}; {sweep_view.counts_line(sweep)}")
    say(sweep_view.best_line(sweep))
    if sweep.get("error"):
        say(f"note: {sweep['error']}")
    if require_success and sweep["status"] != SweepStatus.SUCCEEDED:
        raise fail(f"sweep {sweep['id']} {sweep['status']}")
