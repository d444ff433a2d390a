"""`nnq model`, `nnq reproduce`, `nnq export` and `nnq import`: a model's lineage and verdicts,
re-training it to check it comes out bit for bit the same, and moving models in and out of
nnq (ONNX out, nncore's .npz in). ``register(app)`` adds them to the `nnq` command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from nnq.follow import watch_job
from nnq.inputs import read_json
from nnq.remote import api, call
from nnq.resources import Lineage, Model, Reproduction
from nnq.tables import format_metric, format_value
from nnq.terminal import console, fail, say

SHA_SHOWN = 12  # leading hex digits of a sha256 in tables; --json shows them whole
VERDICT_IDENTICAL = "identical"


def _short(sha: str | None) -> str:
    return format_value(sha[:SHA_SHOWN] if sha else None)


def _lines(title: str, rows: list[tuple[str, Any]]) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in rows:
        table.add_row(key, format_value(value))
    return table


def _model_table(model: Model, lineage: Lineage) -> Table:
    return _lines(f"model {model.id}: {model.name}", [
        ("job", model.job_id), ("source", lineage.source), ("dtype", model.dtype),
        ("input_shape", model.input_shape), ("test_acc", format_metric(
            model.metrics.get("test_acc"))), ("aliases", ", ".join(model.aliases) or None),
        ("onnx", onnx_line(lineage)), ("verdict", lineage.verdict)])


def onnx_line(lineage: Lineage) -> str:
    """What an exported graph takes and gives (`nnq export`)."""
    onnx = lineage.onnx
    return (f"input {onnx.input_name!r} {tuple(onnx.input_shape)} {onnx.dtype}, output "
            f"{onnx.output_name!r} {tuple(onnx.output_shape)}, opset {onnx.opset}")


def _environment_table(lineage: Lineage) -> Table:
    env = lineage.environment or {}
    blas = env.get("blas") or {}
    seeds = lineage.seeds or {}
    return _lines("recorded conditions", [
        ("train.seed / data.seed", f"{seeds.get('train.seed')} / {seeds.get('data.seed')}"),
        ("nnq", env.get("nnq")), ("git commit", env.get("git_commit")),
        ("python / numpy", f"{env.get('python')} / {env.get('numpy')}" if env else None),
        ("BLAS", f"{blas.get('library')} {blas.get('version')} ({blas.get('architecture')}), "
                 f"{blas.get('threads')} thread(s)" if blas else None),
        ("backend", env.get("backend")), ("cpu", env.get("cpu")),
        ("wall / train seconds", _seconds(lineage))])


def _seconds(lineage: Lineage) -> str:
    run = lineage.run
    return f"{format_value(run.wall_seconds)} / {format_value(run.train_seconds)}"


def _data_table(lineage: Lineage) -> Table:
    data = lineage.data
    table = Table(title=f"data: {data.get('dataset')}")
    for column in ("file or array", "sha256", "shape or bytes"):
        table.add_column(column)
    for f in data.get("files") or []:
        table.add_row(f["name"], _short(f["sha256"]), format_value(f.get("bytes")))
    for name, array in (data.get("arrays") or {}).items():
        table.add_row(name, _short(array["sha256"]), format_value(array["shape"]))
    return table


def _attempts_table(lineage: Lineage) -> Table:
    run = lineage.run
    table = Table(title=f"job {format_value(run.job_id)} (sweep {format_value(run.sweep_id)}, "
                        f"trial {format_value(run.trial_index)}): attempts")
    for column in ("attempt", "host", "started", "ended", "resumed from epoch", "outcome"):
        table.add_column(column)
    for a in run.attempts:
        table.add_row(str(a.attempt), a.host, format_value(a.started_at),
                      format_value(a.ended_at), str(a.resumed_from_epoch),
                      format_value(a.outcome))
    return table


def reproductions_table(reproductions: list[Reproduction]) -> Table:
    table = Table(title="reproductions")
    for column in ("id", "original", "job", "model", "verdict", "differing tensors",
                   "differing conditions"):
        table.add_column(column)
    for r in reproductions:
        tensors = ", ".join(f"{t.name} ({format_value(t.max_abs_diff)})" for t in r.tensors)
        conditions = ", ".join(c.condition for c in r.conditions)
        table.add_row(str(r.id), str(r.original_model_id), str(r.job_id),
                      format_value(r.model_id), r.verdict, tensors or "-",
                      conditions or r.error or "-")
    return table


def model(ref: str = typer.Argument(..., metavar="ID", help="model id or alias"),
          as_json: bool = typer.Option(False, "--json", help="the model and its lineage as "
                                                             "JSON")) -> None:
    """Show a model with its lineage: spec seeds, data hashes, software and BLAS, attempts,
    reproduction verdicts and the ONNX input."""
    client = api()
    found, lineage = call(client.model, ref), call(client.lineage, ref)
    if as_json:
        console.print_json(data={"model": found.to_dict(), "lineage": lineage.to_dict()})
        return
    console.print(_model_table(found, lineage))
    if not lineage.recorded:
        say("stored before lineage was recorded: what its job still tells is shown")
    console.print(_environment_table(lineage))
    console.print(_data_table(lineage))
    console.print(_attempts_table(lineage))
    if lineage.reproductions:
        console.print(reproductions_table(lineage.reproductions))


def reproduce(ref: str = typer.Argument(..., metavar="ID", help="model id or alias"),
              wait: bool = typer.Option(False, "--wait", help="follow the job, print the "
                                                              "verdict; exit 1 unless identical")
              ) -> None:
    """Re-train a model from its recorded spec and seeds and compare every tensor."""
    client = api()
    reproduction = call(client.reproduce, ref)
    say(f"reproduction {reproduction.id} of model {reproduction.original_model_id}: "
        f"job {reproduction.job_id} queued")
    if not wait:
        say(f"the verdict: nnq model {reproduction.original_model_id}")
        return
    try:
        call(watch_job, client, reproduction.job_id)
    except KeyboardInterrupt:
        raise fail(f"stopped watching; job {reproduction.job_id} goes on") from None
    reproduction = call(reproduction.refresh)
    console.print(reproductions_table([reproduction]))
    say(f"verdict: {reproduction.verdict} (model {reproduction.original_model_id} vs "
        f"model {format_value(reproduction.model_id)})")
    if reproduction.verdict != VERDICT_IDENTICAL:
        raise fail(f"reproduction {reproduction.id}: {reproduction.verdict}"
                   + (f": {reproduction.error}" if reproduction.error else ""))


def export(ref: str = typer.Argument(..., metavar="ID", help="model id or alias"),
           out: Path = typer.Option(..., "-o", "--out", help="where to write the .onnx file")
           ) -> None:
    """Write the model as ONNX (input 'input', output 'probabilities')."""
    data = call(api().export_onnx, ref)
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise fail(f"{out}: {exc.strerror or exc}") from None
    say(f"model {ref} written to {out} ({len(data)} bytes)")


def import_model(state: Path = typer.Argument(..., metavar="STATE.npz",
                                              help="tensors: python -m nncore train's model "
                                                   "file or a state.npz download"),
                 spec: Path = typer.Option(..., "--spec", help="the job spec they were "
                                                               "trained from (JSON)")) -> None:
    """Store an externally trained model; every tensor is checked against the spec."""
    if not state.is_file():
        raise fail(f"{state}: no such file")
    stored = call(api().import_model, state.read_bytes(), read_json(spec))
    say(f"imported model {stored.id} ({stored.name}, {len(stored.tensors or [])} tensors)")


def register(app: typer.Typer) -> None:
    """Add the commands to the `nnq` app."""
    app.command()(model)
    app.command()(reproduce)
    app.command()(export)
    app.command(name="import")(import_model)
