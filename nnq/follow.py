"""Following a job or a sweep until it ends (a live bar), then reporting it: the tables and
the verdict, with a non-zero exit when it did not succeed. Used by `nnq submit --wait`,
`nnq sweep --wait`, `nnq sweep show` and `nnq demo`; the polling is `Job.wait` / `Sweep.wait`."""

from __future__ import annotations

from typing import Any

from nnq import sweep_view
from nnq.client import Client
from nnq.resources import Job, Sweep
from nnq.status import JobStatus, SweepStatus
from nnq.tables import metrics_table
from nnq.terminal import WATCH_POLL_SECONDS, console, fail, say


def watch_job(client: Client, job_id: Any) -> Job:
    """Poll a job with a live progress bar of its iterations until it is finished."""
    return client.job(job_id).wait(console=console, poll=WATCH_POLL_SECONDS)


def report_job(client: Client, job: Job) -> None:
    """Print a finished job's metrics; exit non-zero with the reason unless it succeeded."""
    rows = client.metrics(job.id).rows()
    if rows:
        console.print(metrics_table(rows))
    if job.status != JobStatus.SUCCEEDED:
        reason = job.error or "no reason given"
        raise fail(f"job {job.id} {job.status}: {reason}")
    console.print(f"job {job.id} succeeded; model [bold]{job.model_id}[/]")


def watch_sweep(client: Client, sweep_id: Any) -> Sweep:
    """Poll a sweep with a live bar of finished trials until the sweep ends."""
    return client.sweep(sweep_id).wait(console=console, poll=WATCH_POLL_SECONDS)


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
