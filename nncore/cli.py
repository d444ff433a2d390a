"""``python -m nncore``: train a job spec locally and evaluate the saved model, no service needed.

The saved ``.npz`` holds the network's tensors (running statistics included) plus a
``meta.json`` entry (a uint8 array of UTF-8 JSON) with the expanded layer list, input shape,
class count, dtype, data section and metrics, so ``nncore.build({"layers": ...})`` rebuilds it.
"""

from __future__ import annotations

import argparse
import json
import zipfile

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

import nncore
from nncore.errors import Cancelled, DataError, DivergenceError, SpecError
from nncore.training import dataset_options

META_KEY = "meta.json"
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def save_model(path: str, run: nncore.TrainingRun, job_spec: dict) -> None:
    """Write the trained network and what is needed to rebuild it to ``path`` (.npz)."""
    net = run.network
    meta = {"name": job_spec.get("name"), "layers": net.layers_spec,
            "input_shape": list(net.input_shape), "num_classes": net.num_classes,
            "dtype": net.dtype.name, "data": job_spec.get("data") or {},
            "data_fingerprint": run.dataset.fingerprint, "metrics": run.metrics}
    state = net.state_dict()
    state[META_KEY] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with open(path, "wb") as f:
        f.write(nncore.state_to_bytes(state))


def load_model(path: str) -> tuple[nncore.Network, dict]:
    """Rebuild a network saved by ``save_model``; returns it with its metadata."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        state = nncore.state_from_bytes(data)
        meta = json.loads(state.pop(META_KEY).tobytes().decode())
        net = nncore.build({"layers": meta["layers"]}, tuple(meta["input_shape"]),
                           meta["num_classes"], dtype=meta["dtype"])
        net.load_state_dict(state)
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise DataError(f"{path}: not a model file written by 'python -m nncore train' "
                        f"({exc})") from exc
    return net, meta


def _metrics_table(rows: list[dict]) -> Table:
    table = Table(title="epochs")
    for column in ("epoch", "train loss", "train acc", "val acc", "test acc", "seconds"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(str(r["epoch"]), _fmt(r["train_loss"]), _fmt(r["train_acc"]),
                      _fmt(r["val_acc"]), _fmt(r["test_acc"]), f"{r['seconds']:.2f}")
    return table


def _fmt(value) -> str:
    """Four decimals; "-" for a metric without data (val_acc when val_fraction is 0)."""
    return "-" if value is None else f"{value:.4f}"


def _read_spec(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
    except OSError as exc:
        raise SpecError("", f"cannot read {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise SpecError("", f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(spec, dict):
        raise SpecError("", f"{path}: the job spec must be a JSON object")
    return spec


def cmd_train(args, console: Console) -> int:
    spec = _read_spec(args.spec)
    if args.epochs is not None:
        spec["train"] = {**(spec.get("train") or {}), "epochs": args.epochs}
    run = nncore.TrainingRun.from_spec(spec, data_dir=args.data_dir, backend=args.backend)
    ds = run.dataset
    console.print(f"{spec.get('name') or args.spec}: {ds.name}, {len(ds.x_train)} train / "
                  f"{len(ds.x_val)} val / {len(ds.x_test)} test, "
                  f"{sum(p.size for p in run.network.params.values())} parameters")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("epoch 1", total=run.total_iterations)

        def on_iteration(p):
            progress.update(task, completed=p["iteration"], description=f"epoch {p['epoch']}")

        def on_epoch(m):
            progress.console.print(f"epoch {m['epoch']}: train loss {_fmt(m['train_loss'])}, "
                                   f"val acc {_fmt(m['val_acc'])}")

        run.fit(on_iteration=on_iteration, on_epoch=on_epoch)
    console.print(_metrics_table(run.metrics))
    save_model(args.out, run, spec)
    console.print(f"model written to {args.out}")
    return 0


def cmd_eval(args, console: Console) -> int:
    net, meta = load_model(args.model)
    data = dict(meta.get("data") or {})
    name = args.dataset or data.get("dataset", "synthetic")
    ds = nncore.load_dataset(name, args.data_dir, flatten=len(meta["input_shape"]) == 1,
                             **dataset_options(data))
    console.print(f"{name} test accuracy: {net.accuracy(ds.x_test, ds.t_test):.4f} "
                  f"({len(ds.x_test)} samples)")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m nncore", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a job spec (JSON) locally")
    train.add_argument("spec", help="job spec JSON file (DESIGN.md 'The job spec')")
    train.add_argument("--out", required=True, help="where to write the model .npz")
    train.add_argument("--data-dir", help="directory of the IDX files (else $NNQ_DATA_DIR)")
    train.add_argument("--epochs", type=int, help="override train.epochs")
    train.add_argument("--backend", default="numpy", choices=nncore.backend.BACKENDS)
    train.set_defaults(func=cmd_train)
    ev = sub.add_parser("eval", help="test accuracy of a saved model")
    ev.add_argument("model", help="model .npz written by 'train'")
    ev.add_argument("--dataset", choices=nncore.DATASETS, help="default: the one it trained on")
    ev.add_argument("--data-dir", help="directory of the IDX files (else $NNQ_DATA_DIR)")
    ev.set_defaults(func=cmd_eval)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    console, errors = Console(), Console(stderr=True)
    try:
        return args.func(args, console)
    except (SpecError, DataError, DivergenceError, Cancelled, OSError) as exc:
        errors.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False,
                     soft_wrap=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        errors.print("interrupted")
        return EXIT_INTERRUPTED
