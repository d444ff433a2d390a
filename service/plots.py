"""The lecture's accuracy figure: train/val/test accuracy per epoch, as PNG bytes.

Uses matplotlib's object API on the Agg canvas (no pyplot state), so concurrent
requests in one process do not draw into each other's figures.
"""

from __future__ import annotations

import io

CURVES = (("train_acc", "train", "o"), ("val_acc", "val", "^"), ("test_acc", "test", "s"))
FIGSIZE_IN = (6.4, 4.8)
DPI = 100


def curves_png(rows: list[dict], title: str = "") -> bytes:
    """Accuracy per epoch for each of train/val/test present in ``rows`` (metric dicts)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=FIGSIZE_IN, dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    epochs = [row["epoch"] for row in rows]
    for key, label, marker in CURVES:
        values = [row.get(key) for row in rows]
        if any(v is not None for v in values):
            ax.plot(epochs, [float("nan") if v is None else v for v in values],
                    marker=marker, markevery=max(1, len(epochs) // 10), label=label)
    if not rows:
        ax.text(0.5, 0.5, "no finished epoch yet", ha="center", va="center",
                transform=ax.transAxes)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.set_xlabel("epochs")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.0)
    ax.set_title(title)
    if rows:
        ax.legend(loc="lower right")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
