"""What needs no server: to_dataframe with and without pandas, the figures, repr and HTML."""

from __future__ import annotations

import builtins

import pytest
from matplotlib.figure import Figure

from nnq.resources import Metrics

ROWS = [{"epoch": 1, "train_loss": 2.0, "train_acc": 0.3, "val_acc": None, "test_acc": 0.25,
         "seconds": 0.1},
        {"epoch": 2, "train_loss": 1.0, "train_acc": 0.6, "val_acc": None, "test_acc": 0.55,
         "seconds": 0.1}]


def metrics() -> Metrics:
    return Metrics.model_validate({"job_id": 7, "items": ROWS})


def test_to_dataframe_with_pandas():
    pandas = pytest.importorskip("pandas")
    frame = metrics().to_dataframe()
    assert isinstance(frame, pandas.DataFrame) and frame.shape == (2, 6)
    assert frame["epoch"].tolist() == [1, 2]


def test_to_dataframe_without_pandas_says_to_install_it(monkeypatch):
    real_import = builtins.__import__

    def no_pandas(name, *args, **kwargs):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("No module named 'pandas'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with pytest.raises(ImportError, match="pip install pandas"):
        metrics().to_dataframe()
    assert metrics().rows() == ROWS  # the rows themselves need no pandas


def test_figure_has_one_line_per_curve_with_values():
    from nnq.plots import job_figure

    figure = job_figure(metrics(), title="job 7")
    assert isinstance(figure, Figure)
    assert [line.get_label() for line in figure.axes[0].lines] == ["train_acc", "test_acc"]
    job_figure(metrics(), title="", ax=figure.axes[0], curves=("test_acc",), label="again")
    assert len(figure.axes[0].lines) == 3


def test_metrics_repr_and_html():
    assert "job_id=7" in repr(metrics()) and "epochs=2" in repr(metrics())
    assert metrics()._repr_html_().count("<tr>") == 3
