"""`nnq demo`: the whole nnq story on Fashion-MNIST in one command.

Starts a private stack, trains a BatchNorm MLP through the queue, then classifies the whole test
set through `POST /models/{id}/predict` and compares that accuracy with the `test_acc` the
worker measured: the two paths share only the stored model, so agreement shows the model was
stored whole (BatchNorm running statistics included) and served in eval mode.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import typer
from rich.table import Table

import nncore
from nnq.client import Client
from nnq.follow import report_job, watch_job
from nnq.processes import free_port
from nnq.stack import Stack, StackConfig
from nnq.tables import format_metric
from nnq.terminal import EXIT_FAILED, console, say

EXAMPLE_SPEC = "examples/fashion-bn-mlp.json"
DEMO_DB = "demo.db"
DEMO_LABEL = "demo"
AGREEMENT_TOLERANCE = 0.005  # BLAS may round differently across batch sizes; near-ties can flip


def demo_spec(root: Path, epochs: int, train_limit: int | None) -> dict:
    """The example BatchNorm MLP spec, shortened to `epochs`."""
    spec = json.loads((root / EXAMPLE_SPEC).read_text())
    spec["name"] = "demo-fashion-bn-mlp"
    spec["train"]["epochs"] = epochs
    spec["data"]["train_limit"] = train_limit
    return spec


def fresh_sqlite(path: Path) -> Path:
    """Remove a previous demo's database (and its WAL files) so old jobs cannot queue ahead."""
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    return path


def http_accuracy(client: Client, model_id, x: np.ndarray, t: np.ndarray, batch: int) -> float:
    """Accuracy of the model on (x, t) measured through the predict endpoint, `batch` per call."""
    labels, _ = client.predict(model_id, np.asarray(x, dtype=np.float32), batch_size=batch)
    return int(np.sum(labels == t)) / len(x)


def _narrate(text: str) -> None:
    say(text, label=DEMO_LABEL)


def run_demo(*, epochs: int, train_limit: int | None, batch: int, data_dir: Path | None) -> None:
    if data_dir is not None:
        os.environ["NNQ_DATA_DIR"] = str(data_dir)
    config = StackConfig(port=free_port(), private_broker=True)
    config.log_dir = config.var_dir / "demo-logs"
    config.database_url = f"sqlite:///{fresh_sqlite(config.var_dir / DEMO_DB)}"
    spec = demo_spec(config.root, epochs, train_limit)
    dataset = nncore.load_dataset("fashion-mnist", str(data_dir) if data_dir else None,
                                  flatten=True)
    _narrate(f"Fashion-MNIST: {len(dataset.x_test)} test images; logs in {config.log_dir}")
    with Stack(config, say=_narrate) as stack:
        client = Client(stack.api_url)
        job = client.submit(spec)
        _narrate(f"submitted job {job.id}: {spec['model']['preset']} "
                 f"{spec['model']['hidden']}, batchnorm, {epochs} epochs; watch it at "
                 f"{stack.api_url}/jobs/{job.id} (dashboard: {stack.api_url}/)")
        job = watch_job(client, job.id)
        report_job(client, job)
        worker_acc = job.metrics()[-1].test_acc
        _narrate(f"predicting {len(dataset.x_test)} test images over HTTP, {batch} per request")
        served_acc = http_accuracy(client, job.model_id, dataset.x_test, dataset.t_test, batch)
        client.close()
    table = Table(title="Fashion-MNIST test accuracy")
    table.add_column("measured by")
    table.add_column("accuracy", justify="right")
    table.add_row("worker (end of training)", format_metric(worker_acc))
    table.add_row("POST /models/{id}/predict", format_metric(served_acc))
    console.print(table)
    if abs(worker_acc - served_acc) > AGREEMENT_TOLERANCE:
        console.print("[bold red]the served model disagrees with the worker[/]")
        raise typer.Exit(EXIT_FAILED)
    same = "exactly" if worker_acc == served_acc else "within BLAS rounding"
    console.print(f"[bold green]they agree {same}[/]: model {job.model_id} is served "
                  "as trained")
