"""Train to accuracy on Fashion-MNIST and print the test accuracy (issue 2 targets).

Uses the same path as a job (``TrainingRun.from_spec``). The test accuracy reported is
the one after the last epoch: nothing is selected by looking at test data.

    .venv/bin/python bench/accuracy.py [--only mlp|simple_convnet] [--epochs N]
"""

from __future__ import annotations

import argparse
import contextlib
import time

import nncore

# name -> (job spec, target test accuracy)
RUNS = {
    "mlp": ({
        "name": "bench-mlp-bn-dropout",
        "data": {"dataset": "fashion-mnist", "val_fraction": 0.1},
        "model": {"preset": "mlp", "hidden": [256, 256], "batchnorm": True,
                  "dropout": 0.2, "init": "he"},
        "train": {"epochs": 20, "batch_size": 100, "optimizer": {"type": "adam", "lr": 0.001},
                  "weight_decay": 0.0, "seed": 0, "dtype": "float32"},
    }, 0.89),
    "simple_convnet": ({
        "name": "bench-simple-convnet",
        "data": {"dataset": "fashion-mnist", "val_fraction": 0.1},
        "model": {"preset": "simple_convnet", "filters": 30, "size": 5, "pool": 2,
                  "hidden": 100},
        "train": {"epochs": 15, "batch_size": 100, "optimizer": {"type": "adam", "lr": 0.0005},
                  "weight_decay": 0.0, "seed": 0, "dtype": "float32"},
    }, 0.91),
}


def train(name: str, spec: dict, target: float, data_dir) -> None:
    start = time.perf_counter()
    run = nncore.TrainingRun.from_spec(spec, data_dir=data_dir)

    def on_epoch(m, _record):
        print(f"  {name} epoch {m['epoch']:2d}: train loss {m['train_loss']:.4f} "
              f"train acc {m['train_acc']:.4f} val acc {m['val_acc']:.4f} "
              f"test acc {m['test_acc']:.4f} ({m['seconds']:.1f} s)", flush=True)

    metrics = run.fit(on_epoch=on_epoch)
    final = metrics[-1]["test_acc"]
    verdict = "OK" if final >= target else f"MISSED by {target - final:.4f}"
    print(f"{name}: test accuracy {final:.4f} after {len(metrics)} epochs "
          f"(target >= {target}: {verdict}), {time.perf_counter() - start:.0f} s", flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=list(RUNS))
    p.add_argument("--epochs", type=int, help="override each run's epochs")
    p.add_argument("--data-dir", help="directory of the Fashion-MNIST IDX files")
    p.add_argument("--threads", type=int, help="cap NumPy's BLAS threads (threadpoolctl)")
    args = p.parse_args(argv)
    limits = contextlib.nullcontext()
    if args.threads:
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(args.threads)
    with limits:
        for name, (spec, target) in RUNS.items():
            if args.only and args.only != name:
                continue
            if args.epochs:
                spec["train"]["epochs"] = args.epochs
            print(f"{name}: {spec['model']} {spec['train']}", flush=True)
            train(name, spec, target, args.data_dir)


if __name__ == "__main__":
    main()
