"""Does a sampler that learns from its trials help? ``random`` against ``tpe`` on the same
budget, through the whole service.

It starts a local stack (a private redis-server, a fresh SQLite database, the API and one
Celery worker with ``--workers`` processes), then for each seed and strategy submits the same
sweep over learning rate, weight decay, hidden width and dropout of an MLP on Fashion-MNIST
(``--train-limit`` training images, ``--epochs`` epochs, no pruner), one sweep at a time,
and prints per sweep the best validation accuracy and the trials it took to reach it (the
best trial's index + 1), then the mean per strategy. A benchmark, not a test: the figures
depend on the data, the budget and the seeds.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE nice -n 10 .venv/bin/python bench/sweeps.py
    .venv/bin/python bench/sweeps.py --train-limit 5000 --epochs 3 --trials 20 --seeds 0
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # so a checkout runs the benchmark without installing nnq

from nnq import Client
from nnq.processes import free_port
from nnq.stack import Stack, StackConfig

STRATEGIES = ("random", "tpe")
SEEDS = (0, 1, 2)
TRIALS = 30
TRAIN_LIMIT = 10_000
EPOCHS = 5
WORKERS = 2
SWEEP_TIMEOUT_S = 3600.0
SPACE = {"train.optimizer.lr": {"loguniform": [1e-5, 1e-1]},
         "train.weight_decay": {"loguniform": [1e-8, 1e-2]},
         "model.hidden.0": {"int_log": [16, 512]},
         "model.dropout": {"uniform": [0.0, 0.6]}}


def request(strategy: str, seed: int, args) -> dict:
    base = {"data": {"dataset": args.dataset, "train_limit": args.train_limit,
                     "val_fraction": 0.1},
            "model": {"preset": "mlp", "hidden": [100], "init": "he"},
            "train": {"epochs": args.epochs, "batch_size": 100, "seed": 0,
                      "optimizer": {"type": "adam", "lr": 0.001}, "dtype": "float32"}}
    return {"name": f"bench-{strategy}-s{seed}", "base": base, "space": SPACE,
            "strategy": strategy, "seed": seed, "max_trials": args.trials,
            "parallelism": args.workers, "metric": "val_acc", "pruner": "none"}


def run_sweep(client: Client, body: dict) -> dict:
    """Submit, wait, and return the figures of one sweep."""
    start = time.monotonic()
    sweep = client.submit_sweep(body).wait(timeout=SWEEP_TIMEOUT_S, progress=False)
    best = sweep.best
    return {"status": str(sweep.status), "best": best.val_acc if best else float("nan"),
            "reached": best.index + 1 if best else None, "seconds": time.monotonic() - start,
            "succeeded": sweep.counts.get("succeeded", 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--trials", type=int, default=TRIALS)
    parser.add_argument("--train-limit", type=int, default=TRAIN_LIMIT)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--workers", type=int, default=WORKERS)
    parser.add_argument("--dataset", default="fashion-mnist")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="nnq-bench-sweeps-"))
    config = StackConfig(root=ROOT, port=free_port(), private_broker=True,
                         database_url=f"sqlite:///{scratch / 'bench.db'}",
                         log_dir=scratch / "logs", concurrency=args.workers)
    print(f"{args.trials} trials x {args.epochs} epochs on {args.train_limit} {args.dataset} "
          f"images, {args.workers} worker processes; logs in {scratch / 'logs'}")
    rows: dict[str, list[dict]] = {s: [] for s in args.strategies}
    with Stack(config, say=lambda _: None) as stack:
        client = Client(stack.api_url)
        for seed in args.seeds:
            for strategy in args.strategies:
                row = run_sweep(client, request(strategy, seed, args))
                rows[strategy].append(row)
                print(f"{strategy:>7} seed {seed}: best val_acc {row['best']:.4f} after "
                      f"{row['reached']} trials ({row['succeeded']} succeeded, "
                      f"{row['seconds']:.0f} s, {row['status']})", flush=True)
    print(f"\n{'strategy':>8}  mean best val_acc  mean trials to reach it  seeds")
    for strategy, found in rows.items():
        reached = [r["reached"] for r in found if r["reached"] is not None]
        bests = " ".join(f"{r['best']:.4f}" for r in found)
        print(f"{strategy:>8}  {statistics.mean(r['best'] for r in found):17.4f}  "
              f"{statistics.mean(reached) if reached else float('nan'):23.1f}  {bests}")


if __name__ == "__main__":
    main()
