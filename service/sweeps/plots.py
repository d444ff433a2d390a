"""The sweep figure, as PNG bytes: the lecture's lr x weight-decay picture and the top curves.

Left: every scored trial placed by the two most important parameters (log axes for
``loguniform`` ones), coloured by the metric. Importance is the absolute Spearman rank
correlation of a parameter with the metric, a log-scale parameter taken as its log and a
``choice``/``grid`` parameter as the index of its value. Right: per-epoch ``val_acc`` of the
best trials. Matplotlib's object API on Agg, no pyplot state, like service.plots.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from service.sweeps.ranking import TrialResult
from service.sweeps.space import CONTINUOUS

FIGSIZE_IN = (12.0, 4.8)
DPI = 100
TOP_CURVES = 5
CURVE_METRIC = "val_acc"
CMAP = "viridis"


def _kind(dist: Mapping[str, Any]) -> str:
    return next(iter(dist))


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def encode(dist: Mapping[str, Any], value: Any) -> float:
    """A parameter value as a number: its log on a log scale, its index for a discrete one."""
    kind = _kind(dist)
    if kind == "loguniform":
        return math.log(float(value))
    if kind in CONTINUOUS:
        return float(value)
    values = dist[kind]
    return float(values.index(value)) if value in values else float("nan")


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 with ties given their average rank (Spearman's convention)."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    for value in np.unique(x):
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation; 0 when either side is constant or too short."""
    if len(x) < 2:
        return 0.0
    rx, ry = _ranks(x), _ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


def importance(space: Mapping[str, Any], trials: list[TrialResult], metric: str
               ) -> list[tuple[str, float]]:
    """(path, |Spearman| with the metric) for every space path, most important first."""
    scored = [t for t in trials if t.last(metric) is not None]
    y = np.array([t.last(metric) for t in scored])
    out = []
    for path, dist in space.items():
        x = np.array([encode(dist, t.params.get(path)) for t in scored])
        keep = np.isfinite(x)
        out.append((path, abs(spearman(x[keep], y[keep]))))
    return sorted(out, key=lambda item: -item[1])


def _axis_values(dist: Mapping[str, Any], values: list[Any]) -> list[float]:
    """Where each value sits on the plot (raw value on a log axis, else as encoded)."""
    if _kind(dist) == "loguniform":
        return [float(v) for v in values]
    return [encode(dist, v) for v in values]


def _style_axis(ax, which: str, path: str, dist: Mapping[str, Any]) -> None:
    set_label = ax.set_xlabel if which == "x" else ax.set_ylabel
    set_label(path)
    if _kind(dist) == "loguniform":
        (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    elif _kind(dist) not in CONTINUOUS:
        values = dist[_kind(dist)]
        set_ticks = ax.set_xticks if which == "x" else ax.set_yticks
        set_ticks(range(len(values)), [_label(v) for v in values])


def _scatter(fig, ax, space, trials, metric) -> None:
    scored = [t for t in trials if t.last(metric) is not None]
    if not scored:
        ax.text(0.5, 0.5, f"no trial has a {metric} yet", ha="center", va="center",
                transform=ax.transAxes)
        return
    paths = [path for path, _ in importance(space, scored, metric)[:2]]
    scores = [t.last(metric) for t in scored]
    xpath = paths[0]
    x = _axis_values(space[xpath], [t.params.get(xpath) for t in scored])
    _style_axis(ax, "x", xpath, space[xpath])
    if len(paths) == 2:
        ypath = paths[1]
        y = _axis_values(space[ypath], [t.params.get(ypath) for t in scored])
        _style_axis(ax, "y", ypath, space[ypath])
        points = ax.scatter(x, y, c=scores, cmap=CMAP, edgecolors="k", linewidths=0.5)
        fig.colorbar(points, ax=ax, label=metric)
    else:
        ax.scatter(x, scores, c=scores, cmap=CMAP, edgecolors="k", linewidths=0.5)
        ax.set_ylabel(metric)
    ax.set_title(f"{metric} by the two most important parameters")


def _curves(ax, ranked: list[TrialResult]) -> None:
    shown = [t for t in ranked if any(r.get(CURVE_METRIC) is not None for r in t.curve)]
    for trial in shown[:TOP_CURVES]:
        epochs = [r["epoch"] for r in trial.curve]
        values = [float("nan") if r.get(CURVE_METRIC) is None else r[CURVE_METRIC]
                  for r in trial.curve]
        ax.plot(epochs, values, marker="o", markersize=3,
                label=f"t{trial.index} ({trial.status})")
    if shown:
        ax.legend(loc="lower right")
    else:
        ax.text(0.5, 0.5, "no finished epoch yet", ha="center", va="center",
                transform=ax.transAxes)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.set_xlabel("epochs")
    ax.set_ylabel(CURVE_METRIC)
    ax.set_ylim(0, 1.0)
    ax.set_title(f"top {TOP_CURVES} trials")


def sweep_png(space: Mapping[str, Any], ranked: list[TrialResult], metric: str,
              title: str = "") -> bytes:
    """The two panels for trials ranked best first (see the module docstring)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE_IN, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    _scatter(fig, left, space, ranked, metric)
    _curves(right, ranked)
    if title:
        fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
