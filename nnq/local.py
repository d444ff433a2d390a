"""``python -m nncore``: train a job spec locally and evaluate the saved model, no service
needed. The same typer, tables and error lines as `nnq`; nncore itself stays a library
(no terminal code), so these commands live here and ``nncore/__main__.py`` only calls them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from enum import StrEnum
from pathlib import Path
from typing import Optional

import typer
from threadpoolctl import threadpool_limits
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

import nncore
from nncore.backend import BACKENDS
from nncore.errors import Cancelled, DataError, DivergenceError, SpecError
from nncore.modelfile import load_model, save_model
from nnq.inputs import read_json
from nnq.tables import format_metric, metrics_table
from nnq.terminal import EXIT_INTERRUPTED, console, fail, say

Backend = StrEnum("Backend", BACKENDS)
DatasetName = StrEnum("DatasetName", nncore.DATASETS)
DATA_DIR_HELP = "directory of the IDX files (else $NNQ_DATA_DIR)"

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Train a job spec locally and evaluate the saved model; no service needed.")


def main() -> None:
    """``python -m nncore`` (see nncore/__main__.py)."""
    app(prog_name="python -m nncore")


@contextmanager
def _reported_errors() -> Iterator[None]:
    """A bad spec, missing data, divergence or an unreadable file: one error line, exit 1;
    Ctrl-C: exit 130. Never a traceback."""
    try:
        yield
    except (SpecError, DataError, DivergenceError, Cancelled, OSError) as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted", EXIT_INTERRUPTED) from None


@app.command()
def train(spec_path: Path = typer.Argument(..., metavar="SPEC.json",
                                           help="job spec (JSON, see README 'The job spec')"),
          out: Path = typer.Option(..., "--out", help="where to write the model .npz"),
          epochs: Optional[int] = typer.Option(None, "--epochs", help="override train.epochs"),
          data_dir: Optional[str] = typer.Option(None, "--data-dir", help=DATA_DIR_HELP),
          backend: Backend = typer.Option(Backend.numpy, "--backend", help="array library"),
          threads: int = typer.Option(
              1, "--threads", min=0,
              help="BLAS threads (1, as on workers: the same weights as a worker's; 0: the "
                   "library's default)")
          ) -> None:
    """Train a job spec (JSON) locally with a progress bar; print the epoch table.

    One BLAS thread by default, as a worker trains: the summation order of a matrix product
    depends on the thread count, so only then are the weights bit-identical to the
    service's (``nnq reproduce`` compares them).
    """
    spec = read_json(spec_path)
    if not isinstance(spec, dict):
        raise fail(f"{spec_path}: the job spec must be a JSON object")
    if epochs is not None:
        spec["train"] = {**(spec.get("train") or {}), "epochs": epochs}
    limits = threadpool_limits(threads) if threads else nullcontext()
    with _reported_errors(), limits:
        run = nncore.TrainingRun.from_spec(spec, data_dir=data_dir, backend=backend.value)
        _fit(run, spec.get("name") or str(spec_path))
        console.print(metrics_table(run.metrics))
        save_model(str(out), run)
    say(f"model written to {out}")


def _fit(run: nncore.TrainingRun, name: str) -> None:
    dataset = run.dataset
    parameters = sum(p.size for p in run.network.params.values())
    say(f"{name}: {dataset.name}, {len(dataset.x_train)} train / {len(dataset.x_val)} val / "
        f"{len(dataset.x_test)} test, {parameters} parameters")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("epoch 1", total=run.total_iterations)

        def on_iteration(position: dict) -> None:
            progress.update(task, completed=position["iteration"],
                            description=f"epoch {position['epoch']}")

        def on_epoch(row: dict, _record: nncore.training.EpochRecord) -> None:
            say(f"epoch {row['epoch']}: train loss {format_metric(row['train_loss'])}, "
                f"val acc {format_metric(row['val_acc'])}")

        run.fit(on_iteration=on_iteration, on_epoch=on_epoch)


@app.command(name="eval")
def evaluate(model_path: Path = typer.Argument(..., metavar="MODEL.npz",
                                               help="model written by 'train'"),
             dataset: Optional[DatasetName] = typer.Option(
                 None, "--dataset", help="default: the one it trained on"),
             data_dir: Optional[str] = typer.Option(None, "--data-dir", help=DATA_DIR_HELP)
             ) -> None:
    """Test accuracy of a saved model."""
    with _reported_errors():
        net, meta = load_model(str(model_path))
        data = dict(meta.get("data") or {})
        name = dataset.value if dataset else data.get("dataset", "synthetic")
        loaded = nncore.load_dataset(name, data_dir, flatten=len(meta["input_shape"]) == 1,
                                     **_dataset_options(data))
        accuracy = net.accuracy(loaded.x_test, loaded.t_test)
    say(f"{name} test accuracy: {format_metric(accuracy)} ({len(loaded.x_test)} samples)")


def _dataset_options(data: dict) -> dict:
    """The saved data section as load_dataset keywords; absent or null means its default."""
    return {key: value for key, value in data.items() if key != "dataset" and value is not None}
