"""Train the accuracy examples on Fashion-MNIST and print the test accuracy of each model.

Each run is a job spec in examples/ (``accuracy-*.json``), trained through
``TrainingRun.from_spec``, the path a job takes, so ``nnq submit`` of the same file trains the
same model. Every epoch prints its training loss and its train and validation accuracy; the
only test accuracy printed is the stored model's, of the epoch ``train.keep_best`` picks by
validation accuracy alone.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        .venv/bin/python bench/accuracy.py [--only mlp] [--threads 1] [--set train.epochs=5]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import nncore

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# name -> (example spec file, target test accuracy)
RUNS = {
    "mlp": ("accuracy-mlp.json", 0.900),
    "simple_convnet": ("accuracy-simple-convnet.json", 0.920),
    "deep_convnet": ("accuracy-deep-convnet.json", 0.935),
}


def override(spec: dict, assignment: str) -> None:
    """Apply ``dotted.path=JSON`` (a bare word counts as a string) to ``spec`` in place."""
    path, _, text = assignment.partition("=")
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    *parents, leaf = path.split(".")
    node = spec
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def train(name: str, spec: dict, target: float, data_dir) -> None:
    start = time.perf_counter()
    run = nncore.TrainingRun.from_spec(spec, data_dir=data_dir)

    def on_epoch(m, _record):
        print(f"  {name} epoch {m['epoch']:3d}: train loss {m['train_loss']:.4f} "
              f"train acc {m['train_acc']:.4f} val acc {m['val_acc']:.4f} "
              f"lr {run.optimizer.hyper['lr']:.2e} ({m['seconds']:.0f} s)", flush=True)

    run.fit(on_epoch=on_epoch)
    kept = run.model_metrics()
    test = kept["test_acc"]
    verdict = "OK" if test >= target else f"MISSED by {target - test:.4f}"
    print(f"{name}: test accuracy {test:.4f} of epoch {run.model_epoch} (val acc "
          f"{kept['val_acc']:.4f}) after {run.epoch} epochs (target >= {target}: {verdict}), "
          f"{time.perf_counter() - start:.0f} s", flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=list(RUNS), action="append",
                   help="run only these (repeatable)")
    p.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                   help="override a spec field for this run, e.g. train.epochs=5")
    p.add_argument("--data-dir", help="directory of the Fashion-MNIST IDX files")
    p.add_argument("--threads", type=int, help="cap NumPy's BLAS threads (threadpoolctl)")
    args = p.parse_args(argv)
    limits = contextlib.nullcontext()
    if args.threads:
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(args.threads)
    with limits:
        for name, (filename, target) in RUNS.items():
            if args.only and name not in args.only:
                continue
            spec = json.loads((EXAMPLES / filename).read_text())
            for assignment in args.set:
                override(spec, assignment)
            print(f"{name}: examples/{filename} {json.dumps(spec['model'])} "
                  f"{json.dumps(spec['train'])}", flush=True)
            train(name, spec, target, args.data_dir)


if __name__ == "__main__":
    main()
