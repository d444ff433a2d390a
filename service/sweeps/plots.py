"""A sweep's figures as PNG bytes, drawn with Matplotlib's object API on Agg (no pyplot
state, like service.plots), from data the API also serves as JSON.

- ``sweep_png``: the lecture's picture — every scored trial placed by the two most important
  parameters (log axes for log ranges), coloured by the metric — next to the per-epoch
  ``val_acc`` of the best trials.
- ``importances_png``, ``history_png``, ``parallel_png``: service.sweeps.insights drawn.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping
from typing import Any

from service.sweeps import space as sp
from service.sweeps.ranking import TrialResult

FIGSIZE_IN = (12.0, 4.8)
SMALL_FIGSIZE_IN = (8.0, 4.8)
DPI = 100
TOP_CURVES = 5
CURVE_METRIC = "val_acc"
CMAP = "viridis"
LINE_ALPHA = 0.7


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def encode(dist: Mapping[str, Any], value: Any) -> float:
    """A parameter value as a number: its log on a log scale, its index for a listed one."""
    kind = sp.kind_of(dist)
    if kind in sp.DISCRETE:
        keys = [sp.choice_key(v) for v in sp.unique_values(sp.arg_of(dist))]
        key = sp.choice_key(value)
        return float(keys.index(key)) if key in keys else float("nan")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return float("nan")
    if kind in sp.LOG_RANGES:
        return math.log(float(value)) if value > 0 else float("nan")
    return float(value)


def _axis_values(dist: Mapping[str, Any], values: list[Any]) -> list[float]:
    """Where each value sits on the plot (raw value on a log axis, else as encoded)."""
    if sp.kind_of(dist) in sp.LOG_RANGES:
        return [float(v) for v in values]
    return [encode(dist, v) for v in values]


def _style_axis(ax, which: str, path: str, dist: Mapping[str, Any]) -> None:
    set_label = ax.set_xlabel if which == "x" else ax.set_ylabel
    set_label(path)
    if sp.kind_of(dist) in sp.LOG_RANGES:
        (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    elif sp.kind_of(dist) in sp.DISCRETE:
        values = sp.unique_values(sp.arg_of(dist))
        set_ticks = ax.set_xticks if which == "x" else ax.set_yticks
        set_ticks(range(len(values)), [_label(v) for v in values])


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)


def _scatter(fig, ax, space, trials, metric, paths: list[str]) -> None:
    scored = [t for t in trials if t.score(metric) is not None and t.chosen]
    if not scored:
        _empty(ax, f"no trial has a {metric} yet")
        return
    scores = [t.score(metric) for t in scored]
    xpath = paths[0]
    x = _axis_values(space[xpath], [t.params.get(xpath) for t in scored])
    _style_axis(ax, "x", xpath, space[xpath])
    if len(paths) >= 2:
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
        _empty(ax, "no finished epoch yet")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.set_xlabel("epochs")
    ax.set_ylabel(CURVE_METRIC)
    ax.set_ylim(0, 1.0)
    ax.set_title(f"top {TOP_CURVES} trials")


def _figure(size=SMALL_FIGSIZE_IN):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig, title: str) -> bytes:
    if title:
        fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def sweep_png(space: Mapping[str, Any], ranked: list[TrialResult], metric: str,
              title: str = "", paths: list[str] | None = None) -> bytes:
    """The two panels for trials ranked best first; ``paths`` most important first (the
    space's order when not given)."""
    fig = _figure(FIGSIZE_IN)
    left, right = fig.subplots(1, 2)
    _scatter(fig, left, space, ranked, metric, paths or list(space))
    _curves(right, ranked)
    return _png(fig, title)


def importances_png(found: Mapping[str, Any], title: str = "") -> bytes:
    """Horizontal bars, most important on top (insights.importances)."""
    fig = _figure()
    ax = fig.subplots()
    items = found.get("importances") or []
    if not items:
        _empty(ax, found.get("note") or "no importances yet")
    else:
        names = [item["param"] for item in reversed(items)]
        ax.barh(names, [item["importance"] for item in reversed(items)])
        ax.set_xlabel(f"importance ({found.get('evaluator')}, {found.get('trials')} trials)")
    ax.set_title("parameter importances")
    return _png(fig, title)


def history_png(points: list[dict[str, Any]], metric: str, title: str = "") -> bytes:
    """Each succeeded trial's metric by index and the best so far (insights.history)."""
    fig = _figure()
    ax = fig.subplots()
    if not points:
        _empty(ax, "no trial has succeeded yet")
    else:
        index = [p["index"] for p in points]
        ax.scatter(index, [p["value"] for p in points], label=metric)
        ax.step(index, [p["best"] for p in points], where="post", color="C3", label="best")
        ax.legend(loc="lower right")
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.set_title("optimization history")
    return _png(fig, title)


def parallel_png(space: Mapping[str, Any], data: Mapping[str, Any], metric: str,
                 title: str = "") -> bytes:
    """One line per succeeded trial across each parameter's axis (scaled to 0..1, log
    ranges by their log, listed values by their position) and the metric's."""
    fig = _figure(FIGSIZE_IN)
    ax = fig.subplots()
    trials = data.get("trials") or []
    paths = list(data.get("params") or space)
    if not trials:
        _empty(ax, "no trial has succeeded yet")
        return _png(fig, title)
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    columns = [[encode(space[p], t["params"].get(p)) for t in trials] for p in paths]
    columns.append([t["value"] for t in trials])
    scaled = []
    for column in columns:
        finite = [v for v in column if math.isfinite(v)]
        lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
        scaled.append([(v - lo) / (hi - lo) if hi > lo else 0.5 for v in column])
    norm = Normalize(min(columns[-1]), max(columns[-1]))
    cmap = colormaps[CMAP]
    for i, trial in enumerate(trials):
        ax.plot(range(len(columns)), [column[i] for column in scaled],
                color=cmap(norm(trial["value"])), alpha=LINE_ALPHA)
    ax.set_xticks(range(len(columns)), [*paths, metric], rotation=15)
    ax.set_yticks([0, 1], ["low", "high"])
    ax.set_title("parallel coordinates (each axis from its lowest to its highest value)")
    return _png(fig, title)
