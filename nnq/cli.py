"""`nnq`: the command line of nnq — run a local stack, submit and watch jobs, call models.

Every command but `up` and `demo` is a thin layer over `nnq.Client` (`--api` / NNQ_API_URL,
token NNQ_API_TOKEN), so the CLI works the same against a laptop or a compose deployment.
`up` and `demo` start server processes; they import what that needs inside the command, so
the other commands never load Flask, SQLAlchemy or Celery. Failures print the service's error
message and exit non-zero, never a traceback.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from nnq import model_cli, sweep_cli
from nnq.errors import NnqError
from nnq.follow import report_job, watch_job
from nnq.inputs import predict_file, read_json
from nnq.remote import api, call, options
from nnq.tables import format_metric, format_value, metrics_table
from nnq.terminal import console, fail, say
from nnq.transport import API_PREFIX

PREDICT_ROWS_SHOWN = 20
UP_LABEL = "nnq up"

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="nnq: train the book's NumPy networks as jobs, keep and serve the models.")
app.add_typer(sweep_cli.app, name="sweep")


@app.callback()
def _options(api_url: Optional[str] = typer.Option(
        None, "--api", envvar="NNQ_API_URL",
        help="API base URL (default http://127.0.0.1:5000)")) -> None:
    options.api_url = api_url


def main() -> None:
    """Console-script entry point (`nnq`)."""
    app()


@app.command()
def submit(spec: Path = typer.Argument(..., help="job spec (JSON, see README)"),
           wait: bool = typer.Option(False, "--wait", help="follow the job and print its metrics"),
           idempotency_key: Optional[str] = typer.Option(None, "--idempotency-key",
                                                         help="the same key returns the same job")
           ) -> None:
    """Submit a training job."""
    body = read_json(spec)
    client = api()
    job = call(client.submit, body, idempotency_key=idempotency_key)
    console.print(f"submitted job [bold]{job.id}[/] ({job.status})")
    if wait:
        try:
            job = call(watch_job, client, job.id)
        except KeyboardInterrupt:
            raise fail(f"stopped watching; job {job.id} goes on (nnq job {job.id})") from None
        call(report_job, client, job)


@app.command()
def jobs(status: Optional[str] = typer.Option(None, help="only jobs with this status"),
         limit: int = typer.Option(50, help="how many, newest first")) -> None:
    """List jobs."""
    rows = call(api().jobs, status=status, limit=limit)
    table = Table(title="jobs")
    for name in ("id", "name", "status", "device", "progress", "attempts", "model", "error"):
        table.add_column(name)
    for job in rows:
        done = f"{job.progress.iteration or 0}/{job.progress.total_iterations or '?'}"
        device = job.device or job.spec.get("device")
        table.add_row(format_value(job.id), format_value(job.name), str(job.status),
                      format_value(device), done, format_value(job.attempts),
                      format_value(job.model_id), format_value(job.error))
    console.print(table)


@app.command()
def job(job_id: str = typer.Argument(..., help="job id")) -> None:
    """Show one job and its metrics."""
    client = api()
    console.print_json(data=call(client.job, job_id).to_dict())
    rows = call(client.metrics, job_id).rows()
    if rows:
        console.print(metrics_table(rows))


@app.command()
def cancel(job_id: str = typer.Argument(..., help="job id")) -> None:
    """Cancel a queued or running job."""
    job = call(api().cancel, job_id)
    say(f"job {job.id}: {job.status}")


@app.command()
def models() -> None:
    """List stored models."""
    rows = call(api().models)
    table = Table(title="models")
    for name in ("id", "name", "job", "dtype", "input", "test_acc", "aliases"):
        table.add_column(name)
    for model in rows:
        table.add_row(format_value(model.id), format_value(model.name),
                      format_value(model.job_id), format_value(model.dtype),
                      format_value(model.input_shape),
                      format_metric(model.metrics.get("test_acc")), ", ".join(model.aliases))
    console.print(table)


@app.command()
def predict(model: str = typer.Argument(..., help="model id or alias"),
            file: Path = typer.Argument(..., help=".npy array, 28x28 .png, or .json samples")
            ) -> None:
    """Classify samples with a stored model."""
    labels, probabilities = call(api().predict, model, predict_file(file))
    table = Table(title=f"model {model}: {len(labels)} sample(s)")
    for name in ("sample", "label", "probability"):
        table.add_column(name, justify="right")
    for index, label in enumerate(labels[:PREDICT_ROWS_SHOWN]):
        top = probabilities[index].max() if index < len(probabilities) else None
        table.add_row(str(index), str(label), format_metric(top))
    console.print(table)
    if len(labels) > PREDICT_ROWS_SHOWN:
        console.print(f"... {len(labels) - PREDICT_ROWS_SHOWN} more")


model_cli.register(app)  # model, reproduce, export, import


class _Stop(Exception):
    """Raised from SIGTERM so `up` and `demo` unwind like they do on Ctrl-C."""


def _raise_stop(signum, frame) -> None:
    raise _Stop()


@contextmanager
def _sigterm_unwinds():
    """While inside, SIGTERM raises _Stop, so the stack's children are stopped on the way out."""
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@app.command()
def up(host: str = typer.Option("127.0.0.1", help="API address"),
       port: int = typer.Option(5000, help="API port"),
       queues: str = typer.Option("cpu", help="worker queues (cpu, gpu or cpu,gpu)"),
       concurrency: int = typer.Option(1, help="worker processes"),
       logs: Optional[Path] = typer.Option(None, help="write child output here, not the terminal"),
       ) -> None:
    """Run a local stack in the foreground: Redis (if needed), migrated DB, API, one worker."""
    from nnq.stack import Stack, StackConfig, StackError

    config = StackConfig(host=host, port=port, queues=queues, concurrency=concurrency,
                         log_dir=logs)
    stack = Stack(config, say=lambda text: say(text, label=UP_LABEL))
    with _sigterm_unwinds():
        try:
            stack.start()
            say(f"stack running; API at {stack.api_url}{API_PREFIX}, dashboard at "
                f"{stack.api_url}/; Ctrl-C stops it", label=UP_LABEL)
            dead = stack.wait()
            raise fail(f"{stack.describe_death(dead)}; stopping the stack")
        except StackError as exc:
            raise fail(str(exc)) from None
        except (KeyboardInterrupt, _Stop):
            say("stopping", label=UP_LABEL)
        finally:
            stack.stop()


@app.command()
def demo(epochs: int = typer.Option(5, help="training epochs"),
         train_limit: Optional[int] = typer.Option(None, help="train on the first N samples"),
         batch: int = typer.Option(500, help="test images per predict request"),
         data_dir: Optional[Path] = typer.Option(None, envvar="NNQ_DATA_DIR",
                                                 help="Fashion-MNIST IDX files")) -> None:
    """Train a BatchNorm MLP on Fashion-MNIST through the queue and check it over HTTP."""
    from nncore import DataError
    from nnq.demo import run_demo
    from nnq.stack import StackError

    with _sigterm_unwinds():
        try:
            run_demo(epochs=epochs, train_limit=train_limit, batch=batch, data_dir=data_dir)
        except DataError as exc:
            raise fail(f"{exc} (install dataset-fashion-mnist or set NNQ_DATA_DIR)") from None
        except (StackError, NnqError) as exc:
            raise fail(str(exc)) from None
        except (KeyboardInterrupt, _Stop):
            raise fail("interrupted") from None
