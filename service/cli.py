"""`nnq`: the command line of nnq — run a local stack, submit and watch jobs, call models.

Every command but `up` and `demo` is a thin HTTP client of the API (`--api` / NNQ_API_URL,
token NNQ_API_TOKEN), so the CLI works the same against a laptop or a compose deployment.
Failures print the service's error message and exit non-zero, never a traceback.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.console import Console
from rich.markup import escape as _escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from service import sweep_view
from service.client import Api, ApiError
from service.stack import Stack, StackConfig, StackError

TERMINAL = {"succeeded", "failed", "cancelled", "pruned"}
POLL_SECONDS = 0.5
PREDICT_ROWS_SHOWN = 20
EXIT_FAILED = 1
EXIT_UNREACHABLE = 2

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="nnq: train the book's NumPy networks as jobs, keep and serve the models.")
# Piped output (logs, `> results.txt`) gets a wide table instead of rich's 80 columns, so the
# ranked parameters of a sweep are not cut to "1.46e-…".
PIPED_WIDTH = 200
console = Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)
err_console = Console(stderr=True)


class _State:
    api_url: Optional[str] = None


state = _State()


@app.callback()
def _options(api: Optional[str] = typer.Option(
        None, "--api", envvar="NNQ_API_URL",
        help="API base URL (default http://127.0.0.1:5000)")) -> None:
    state.api_url = api


def main() -> None:
    """Console-script entry point (`nnq`)."""
    app()


def _api() -> Api:
    return Api(state.api_url)


def _fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    return typer.Exit(code)


def _call(fn, *args, **kwargs):
    """Run one API call; an ApiError becomes a printed message and a non-zero exit."""
    try:
        return fn(*args, **kwargs)
    except ApiError as exc:
        code = EXIT_UNREACHABLE if exc.status is None else EXIT_FAILED
        raise _fail(_escape(str(exc)), code) from None


def items(payload: Any) -> list:
    """The rows of a list response, whether bare or wrapped in {"items": [...]}."""
    if isinstance(payload, list):
        return payload
    for key in ("items", "jobs", "models", "metrics", "data"):
        if isinstance(payload.get(key), list):
            return payload[key]
    return []


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def metrics_table(rows: list[dict]) -> Table:
    table = Table(title="metrics per epoch")
    columns = ("epoch", "train_loss", "train_acc", "val_acc", "test_acc", "seconds")
    for name in columns:
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(*(_fmt(row.get(name)) for name in columns))
    return table


def _watch(description: str, fetch) -> dict:
    """Poll ``fetch() -> (resource, completed, total, detail, finished)`` under a live bar
    until ``finished``; return the last resource."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[detail]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=None, detail="queued")
        while True:
            resource, completed, total, detail, finished = fetch()
            progress.update(task, total=total or None, completed=completed, detail=detail)
            if finished:
                return resource
            time.sleep(POLL_SECONDS)


def watch_job(api: Api, job_id: Any) -> dict:
    """Poll a job with a live progress bar of its iterations until it is terminal."""
    def fetch():
        job = api.get(f"/jobs/{job_id}")
        p = job.get("progress") or {}
        epochs = ((job.get("spec") or {}).get("train") or {}).get("epochs")
        detail = f"{job['status']}  epoch {p.get('epoch') or 0}/{epochs or '?'}"
        return (job, p.get("iteration") or 0, p.get("total_iterations"), detail,
                job["status"] in TERMINAL)

    return _watch(f"job {job_id}", fetch)


def report_job(api: Api, job: dict) -> None:
    """Print a finished job's metrics; exit non-zero with the reason unless it succeeded."""
    rows = items(api.get(f"/jobs/{job['id']}/metrics"))
    if rows:
        console.print(metrics_table(rows))
    if job["status"] != "succeeded":
        reason = job.get("error") or "no reason given"
        raise _fail(_escape(f"job {job['id']} {job['status']}: {reason}"))
    console.print(f"job {job['id']} succeeded; model [bold]{job.get('model_id')}[/]")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise _fail(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _fail(f"{path}: not valid JSON ({exc})") from None


@app.command()
def submit(spec: Path = typer.Argument(..., help="job spec (JSON, see README)"),
           wait: bool = typer.Option(False, "--wait", help="follow the job and print its metrics"),
           idempotency_key: Optional[str] = typer.Option(None, "--idempotency-key",
                                                         help="the same key returns the same job")
           ) -> None:
    """Submit a training job."""
    body = _read_json(spec)
    api = _api()
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    job = _call(api.post, "/jobs", json=body, headers=headers)
    console.print(f"submitted job [bold]{job['id']}[/] ({job['status']})")
    if wait:
        try:
            job = _call(watch_job, api, job["id"])
        except KeyboardInterrupt:
            raise _fail(f"stopped watching; job {job['id']} goes on (nnq job {job['id']})") from None
        _call(report_job, api, job)


@app.command()
def jobs(status: Optional[str] = typer.Option(None, help="only jobs with this status"),
         limit: int = typer.Option(50, help="how many, newest first")) -> None:
    """List jobs."""
    rows = items(_call(_api().get, "/jobs", status=status, limit=limit))
    table = Table(title="jobs")
    for name in ("id", "name", "status", "device", "progress", "attempts", "model", "error"):
        table.add_column(name)
    for job in rows:
        p = job.get("progress") or {}
        done = f"{p.get('iteration') or 0}/{p.get('total_iterations') or '?'}"
        table.add_row(_fmt(job.get("id")), _fmt(job.get("name")), job.get("status", "?"),
                      _fmt(job.get("device") or (job.get("spec") or {}).get("device")), done,
                      _fmt(job.get("attempts")), _fmt(job.get("model_id")),
                      _fmt(job.get("error")))
    console.print(table)


@app.command()
def job(job_id: str = typer.Argument(..., help="job id")) -> None:
    """Show one job and its metrics."""
    api = _api()
    data = _call(api.get, f"/jobs/{job_id}")
    console.print_json(data=data)
    rows = items(_call(api.get, f"/jobs/{job_id}/metrics"))
    if rows:
        console.print(metrics_table(rows))


@app.command()
def cancel(job_id: str = typer.Argument(..., help="job id")) -> None:
    """Cancel a queued or running job."""
    data = _call(_api().post, f"/jobs/{job_id}/cancel")
    console.print(f"job {data.get('id', job_id)}: {data.get('status', 'cancel requested')}")


@app.command()
def models() -> None:
    """List stored models."""
    rows = items(_call(_api().get, "/models"))
    table = Table(title="models")
    for name in ("id", "name", "job", "dtype", "input", "test_acc", "aliases"):
        table.add_column(name)
    for model in rows:
        metrics = model.get("metrics") or {}
        table.add_row(_fmt(model.get("id")), _fmt(model.get("name")), _fmt(model.get("job_id")),
                      _fmt(model.get("dtype")), _fmt(model.get("input_shape")),
                      _fmt(metrics.get("test_acc")), ", ".join(model.get("aliases") or []))
    console.print(table)


def predict_request(path: Path) -> dict:
    """httpx keyword arguments that send FILE the way the predict endpoint takes it."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        body = _read_json(path)
        return {"json": body if isinstance(body, dict) else {"inputs": body}}
    if suffix == ".npy":
        return {"content": path.read_bytes(),
                "headers": {"Content-Type": "application/octet-stream"}}
    if suffix == ".png":
        return {"files": {"image": (path.name, path.read_bytes(), "image/png")}}
    raise _fail(f"{path}: expected a .json, .npy or .png file")


@app.command()
def predict(model: str = typer.Argument(..., help="model id or alias"),
            file: Path = typer.Argument(..., help=".npy array, 28x28 .png, or .json samples")
            ) -> None:
    """Classify samples with a stored model."""
    if not file.is_file():
        raise _fail(f"{file}: no such file")
    result = _call(_api().post, f"/models/{model}/predict", **predict_request(file))
    labels = result.get("labels", [])
    probabilities = result.get("probabilities", [])
    table = Table(title=f"model {model}: {len(labels)} sample(s)")
    for name in ("sample", "label", "probability"):
        table.add_column(name, justify="right")
    for index, label in enumerate(labels[:PREDICT_ROWS_SHOWN]):
        top = max(probabilities[index]) if index < len(probabilities) else None
        table.add_row(str(index), str(label), _fmt(top))
    console.print(table)
    if len(labels) > PREDICT_ROWS_SHOWN:
        console.print(f"... {len(labels) - PREDICT_ROWS_SHOWN} more")


SWEEP_ACTIONS = {"show": 1, "cancel": 1, "promote": 2}  # action -> arguments it takes


def watch_sweep(api: Api, sweep_id: Any) -> dict:
    """Poll a sweep with a live bar of finished trials until the sweep ends."""
    def fetch():
        sweep = api.get(f"/sweeps/{sweep_id}")
        done, total, detail = sweep_view.progress(sweep)
        return sweep, done, total, _escape(detail), sweep["status"] in sweep_view.FINISHED

    return _watch(f"sweep {sweep_id}", fetch)


def report_sweep(sweep: dict, *, require_success: bool = False) -> None:
    """The ranked table and the best trial; with ``require_success`` (after --wait) exit
    non-zero when the sweep failed or was cancelled."""
    console.print(sweep_view.ranked_table(sweep))
    console.print(_escape(f"sweep {sweep['id']} {sweep['status']}; "
                          f"{sweep_view.counts_line(sweep)}"), highlight=False)
    console.print(_escape(sweep_view.best_line(sweep)), highlight=False)
    if sweep.get("error"):
        console.print(_escape(f"note: {sweep['error']}"), highlight=False)
    if require_success and sweep["status"] != "succeeded":
        raise _fail(_escape(f"sweep {sweep['id']} {sweep['status']}"))


def _submit_sweep(path: Path, wait: bool, idempotency_key: Optional[str]) -> None:
    body = _read_json(path)
    api = _api()
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    sweep = _call(api.post, "/sweeps", json=body, headers=headers)
    console.print(_escape(f"submitted sweep {sweep['id']} ({sweep['status']}, "
                          f"{sweep_view.counts_line(sweep)})"), highlight=False)
    if not wait:
        console.print(f"follow it with: nnq sweep show {sweep['id']}", highlight=False)
        return
    try:
        sweep = _call(watch_sweep, api, sweep["id"])
    except KeyboardInterrupt:
        raise _fail(f"stopped watching; sweep {sweep['id']} goes on "
                    f"(nnq sweep show {sweep['id']})") from None
    report_sweep(sweep, require_success=True)


def _sweep_action(action: str, args: list[str]) -> None:
    api = _api()
    if action == "show":
        report_sweep(_call(api.get, f"/sweeps/{args[0]}"))
    elif action == "cancel":
        sweep = _call(api.post, f"/sweeps/{args[0]}/cancel")
        console.print(_escape(f"sweep {sweep['id']}: {sweep['status']}; "
                              f"{sweep_view.counts_line(sweep)}"), highlight=False)
    else:
        out = _call(api.post, f"/sweeps/{args[0]}/promote", json={"alias": args[1]})
        trial = out.get("trial") or {}
        console.print(_escape(
            f"alias {out['alias']} -> model {out['model_id']} (sweep {out['sweep_id']}, "
            f"trial {trial.get('index')}, job {trial.get('job_id')}, "
            f"val_acc {sweep_view.format_value(trial.get('val_acc'))})"), highlight=False)


@app.command()
def sweep(target: str = typer.Argument(..., metavar="SWEEP.json|show|cancel|promote",
                                       help="a sweep file to submit, or an action"),
          args: Optional[List[str]] = typer.Argument(None, metavar="[ID [ALIAS]]",
                                                     help="the action's sweep id (and alias)"),
          wait: bool = typer.Option(False, "--wait",
                                    help="follow the sweep, then print the ranked trials"),
          idempotency_key: Optional[str] = typer.Option(
              None, "--idempotency-key", help="the same key returns the same sweep")) -> None:
    """Hyperparameter sweeps: `nnq sweep SWEEP.json [--wait]`, `nnq sweep show ID`,
    `nnq sweep cancel ID`, `nnq sweep promote ID ALIAS`."""
    args = args or []
    if target in SWEEP_ACTIONS and (args or not Path(target).is_file()):
        if len(args) != SWEEP_ACTIONS[target]:
            usage = {"show": "ID", "cancel": "ID", "promote": "ID ALIAS"}[target]
            raise _fail(f"usage: nnq sweep {target} {usage}")
        _sweep_action(target, args)
        return
    if args:
        raise _fail(f"unexpected arguments after {target}: {' '.join(args)} "
                    f"(actions are {', '.join(SWEEP_ACTIONS)})")
    _submit_sweep(Path(target), wait, idempotency_key)


class _Stop(Exception):
    """Raised from SIGTERM so `up` unwinds like it does on Ctrl-C."""


def _raise_stop(signum, frame) -> None:
    raise _Stop()


@app.command()
def up(host: str = typer.Option("127.0.0.1", help="API address"),
       port: int = typer.Option(5000, help="API port"),
       queues: str = typer.Option("cpu", help="worker queues (cpu, gpu or cpu,gpu)"),
       concurrency: int = typer.Option(1, help="worker processes"),
       logs: Optional[Path] = typer.Option(None, help="write child output here, not the terminal"),
       ) -> None:
    """Run a local stack in the foreground: Redis (if needed), migrated DB, API, one worker."""
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    config = StackConfig(host=host, port=port, queues=queues, concurrency=concurrency,
                         log_dir=logs)
    stack = Stack(config, say=lambda text: console.print(f"[cyan]nnq up:[/] {_escape(text)}"))
    try:
        stack.start()
        console.print(f"[cyan]nnq up:[/] stack running; API at [bold]{stack.api_url}[/]; "
                      "Ctrl-C stops it")
        dead = stack.wait()
        raise _fail(_escape(f"{stack.describe_death(dead)}; stopping the stack"))
    except StackError as exc:
        raise _fail(_escape(str(exc))) from None
    except (KeyboardInterrupt, _Stop):
        console.print("[cyan]nnq up:[/] stopping")
    finally:
        stack.stop()
        signal.signal(signal.SIGTERM, previous)


@app.command()
def demo(epochs: int = typer.Option(5, help="training epochs"),
         train_limit: Optional[int] = typer.Option(None, help="train on the first N samples"),
         batch: int = typer.Option(500, help="test images per predict request"),
         data_dir: Optional[Path] = typer.Option(None, envvar="NNQ_DATA_DIR",
                                                 help="Fashion-MNIST IDX files")) -> None:
    """Train a BatchNorm MLP on Fashion-MNIST through the queue and check it over HTTP."""
    from nncore import DataError
    from service.demo import run_demo

    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        run_demo(console, epochs=epochs, train_limit=train_limit, batch=batch,
                 data_dir=data_dir)
    except DataError as exc:
        raise _fail(_escape(f"{exc} (install dataset-fashion-mnist or set NNQ_DATA_DIR)")) from None
    except (StackError, ApiError) as exc:
        raise _fail(_escape(str(exc))) from None
    except (KeyboardInterrupt, _Stop):
        raise _fail("interrupted") from None
    finally:
        signal.signal(signal.SIGTERM, previous)
