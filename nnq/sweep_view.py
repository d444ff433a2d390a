"""How `nnq sweep` shows a sweep resource (GET /api/v1/sweeps/{id}): plain functions of its
JSON, so the commands stay thin and the rendering is testable without a server."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from nnq.status import TRIAL_PENDING, JobStatus
from nnq.tables import format_metric, format_value

# The order `counts_line` lists trial statuses in: outcomes first, then what is still to come.
COUNTS_ORDER = (JobStatus.SUCCEEDED, JobStatus.PRUNED, JobStatus.FAILED, JobStatus.CANCELLED,
                JobStatus.RUNNING, JobStatus.QUEUED, TRIAL_PENDING)
TO_BE_CHOSEN = "to be chosen"  # an adaptive strategy's trial before it starts
IMPORTANCE_BAR = 30  # characters of the widest importance bar


def param_paths(sweep: dict) -> list[str]:
    """The searched spec paths, in the request's order (falling back to the trials')."""
    space = (sweep.get("request") or {}).get("space") or {}
    if space:
        return list(space)
    paths: list[str] = []
    for trial in sweep.get("trials") or []:
        paths.extend(p for p in trial.get("params") or {} if p not in paths)
    return paths


def ranked_table(sweep: dict) -> Table:
    """Rank, trial, job, status, each parameter, the metric's columns and epochs, best first
    (the API's order); the best succeeded trial is starred."""
    metric = sweep.get("metric") or "val_acc"
    best_job = (sweep.get("best") or {}).get("job_id")
    paths = param_paths(sweep)
    table = Table(title=f"sweep {sweep.get('id')} {escape(str(sweep.get('name', '')))}: "
                        f"trials ranked by {metric}")
    for name in ("rank", "trial", "job", "status"):
        table.add_column(name, justify="right" if name != "status" else "left")
    for path in paths:
        table.add_column(escape(path), justify="right")
    for name in ("val_acc", "test_acc", "epochs"):
        table.add_column(name, justify="right")
    for rank, trial in enumerate(sweep.get("trials") or [], start=1):
        job_id = trial.get("job_id")
        star = " *" if job_id is not None and job_id == best_job else ""
        table.add_row(f"{rank}{star}", str(trial.get("index")), format_value(job_id),
                      str(trial.get("status")), *_param_cells(trial, paths),
                      format_metric(trial.get("val_acc")), format_metric(trial.get("test_acc")),
                      str(trial.get("epochs", 0)))
    return table


def _param_cells(trial: dict, paths: list[str]) -> list[str]:
    """Each searched value; a trial whose params an adaptive strategy has yet to choose says
    so in its first parameter column."""
    if trial.get("chosen", True) is False:
        return [TO_BE_CHOSEN, *([""] * (len(paths) - 1))] if paths else []
    params = trial.get("params") or {}
    return [format_value(params.get(p)) for p in paths]


def importances_lines(found: dict) -> list[str]:
    """Optuna's importances (GET /sweeps/{id}/importances) as bars, most important first,
    or the note saying why there are none yet."""
    items = found.get("importances") or []
    if not items:
        return [f"importances: {found.get('note') or 'none yet'}"]
    width = max(len(item["param"]) for item in items)
    lines = [(f"parameter importances ({found.get('evaluator')}, "
              f"{found.get('trials')} succeeded trials):")]
    for item in items:
        share = float(item["importance"])
        bar = "#" * max(1, round(share * IMPORTANCE_BAR)) if share > 0 else ""
        lines.append(f"  {item['param'].ljust(width)}  {share:5.3f}  {bar}")
    return lines


def counts_line(sweep: dict) -> str:
    """``12 trials: 5 succeeded, 3 pruned, 2 running, ...`` (zero counts left out)."""
    counts = sweep.get("counts") or {}
    parts = [f"{counts[s]} {s}" for s in COUNTS_ORDER if counts.get(s)]
    return f"{counts.get('total', 0)} trials: " + (", ".join(parts) or "none yet")


def best_line(sweep: dict) -> str:
    """The current best succeeded trial and its metric, or that there is none yet."""
    best = sweep.get("best")
    metric = sweep.get("metric") or "val_acc"
    if not best:
        return f"best {metric}: none yet"
    return (f"best {metric} {format_metric(best.get(metric))} (trial {best.get('index')}, "
            f"job {best.get('job_id')}, model {format_value(best.get('model_id'))})")


def progress(sweep: dict) -> tuple[int, int, str]:
    """``(trials done, total, detail)`` for a live progress bar."""
    counts = sweep.get("counts") or {}
    done = sum(int(counts.get(s) or 0) for s in JobStatus.FINISHED)
    detail = (f"{sweep.get('status')}  done {counts.get('succeeded', 0)}  "
              f"pruned {counts.get('pruned', 0)}  failed {counts.get('failed', 0)}  "
              f"running {counts.get('running', 0)}  queued {counts.get('queued', 0)}  "
              f"{best_line(sweep)}")
    return done, int(counts.get("total") or 0), detail
