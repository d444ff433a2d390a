"""The lecture's figures from a job's or a sweep's metrics, with matplotlib's object API
(``matplotlib.figure.Figure``, no pyplot state), so they render inline in Jupyter and save
headless. Imported only by ``Job.plot`` / ``Sweep.plot``."""

from __future__ import annotations

import math
from typing import Any

from matplotlib.figure import Figure

ACCURACY_CURVES = ("train_acc", "val_acc", "test_acc")
FIGSIZE = (6.4, 4.0)
SWEEP_FIGSIZE = (11.0, 4.2)


def job_figure(metrics, *, title: str, ax=None, curves=None, label: str | None = None):
    """Accuracy per epoch, one line per curve that has values; returns the Figure."""
    if ax is None:
        fig = Figure(figsize=FIGSIZE, layout="constrained")
        ax = fig.add_subplot()
        ax.set_title(title)
    rows = list(metrics)
    epochs = [row.epoch for row in rows]
    for curve in curves or ACCURACY_CURVES:
        values = [getattr(row, curve) for row in rows]
        if not any(v is not None for v in values):
            continue
        shown = [math.nan if v is None else v for v in values]
        ax.plot(epochs, shown, marker="o", label=f"{label} {curve}" if label else curve)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return ax.figure


def sweep_figure(sweep, curves: dict[int, Any]):
    """Left: the sweep's metric per trial over its first searched parameter (log scale for a
    loguniform range; colour = the second parameter's value when there is one). Right: the
    per-epoch metric of the top trials (``curves``: trial index -> Metrics), one line each."""
    fig = Figure(figsize=SWEEP_FIGSIZE, layout="constrained")
    left, right = fig.subplots(1, 2)
    fig.suptitle(f"sweep {sweep.id}: {sweep.name}")
    space = (sweep.request or {}).get("space") or {}
    paths = list(space) or sorted({p for t in sweep.trials or [] for p in t.params})
    scored = [t for t in sweep.trials or [] if getattr(t, sweep.metric, None) is not None]
    if paths and scored:
        x_path = paths[0]
        xs = [t.params.get(x_path) for t in scored]
        ys = [getattr(t, sweep.metric) for t in scored]
        colour = None
        if len(paths) > 1 and all(isinstance(t.params.get(paths[1]), (int, float))
                                  for t in scored):
            colour = [t.params[paths[1]] for t in scored]
        points = left.scatter(xs, ys, c=colour, cmap="viridis" if colour else None)
        if colour:
            fig.colorbar(points, ax=left, label=paths[1])
        if "loguniform" in (space.get(x_path) or {}):
            left.set_xscale("log")
        left.set_xlabel(x_path)
    left.set_ylabel(sweep.metric)
    left.set_title(f"{sweep.metric} per trial (last epoch)")
    left.grid(True, alpha=0.3)
    for index, metrics in curves.items():
        rows = list(metrics)
        values = [getattr(row, sweep.metric) for row in rows]
        right.plot([row.epoch for row in rows],
                   [math.nan if v is None else v for v in values], marker=".",
                   label=f"trial {index}")
    right.set_xlabel("epoch")
    right.set_ylabel(sweep.metric)
    right.set_title(f"top {len(curves)} trials")
    right.grid(True, alpha=0.3)
    if curves:
        right.legend()
    return fig
