"""What the run records cost per epoch: the activation-statistics probe pass and the
per-iteration loss bookkeeping, next to the epoch's training time.

For each network it trains one epoch of Fashion-MNIST (synthetic data of the same shape when
the files are missing) at batch 100 with Adam, as a worker does (one BLAS thread unless
OPENBLAS_NUM_THREADS says otherwise), then times ``Network.activation_stats`` on the
``PROBE_SIZE`` probe batch and the loss bookkeeping of one epoch's steps, each the median of
ROUNDS runs, and prints them in ms and as a share of the epoch.

    .venv/bin/python bench/records.py [--dataset synthetic] [--train-limit N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import workers  # noqa: F401 - first: sets the worker's BLAS thread count before numpy loads

import nncore  # noqa: E402
from nncore.training import PROBE_SIZE, probe_batch  # noqa: E402

ROUNDS = 20
BATCH = 100
NETWORKS = {
    "mlp 784-100-100-100-10 BN": {"preset": "mlp", "hidden": [100, 100, 100],
                                  "batchnorm": True},
    "simple_convnet": {"preset": "simple_convnet"},
}


def spec(model: dict, dataset: str, train_limit: int | None) -> dict:
    return {"name": "bench-records", "data": {"dataset": dataset, "train_limit": train_limit},
            "model": model,
            "train": {"epochs": 1, "batch_size": BATCH, "optimizer": {"type": "adam",
                                                                     "lr": 0.001}}}


def median_ms(fn) -> float:
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def bookkeeping(steps: int, every: int) -> None:
    """Exactly TrainingRun's per-step loss bookkeeping over one epoch of ``steps``."""
    kept, loss = [], 1.0
    for step in range(steps):
        iteration = step + 1
        if iteration % every == 0 or step == steps - 1:
            kept.append((iteration, loss))


def measure(name: str, model: dict, dataset: str, train_limit: int | None) -> None:
    try:
        run = nncore.TrainingRun.from_spec(spec(model, dataset, train_limit))
    except nncore.DataError:
        run = nncore.TrainingRun.from_spec(spec(model, "synthetic", train_limit))
    epoch_ms = 1000 * run.fit()[0]["seconds"]
    probe = probe_batch(run.dataset)                      # (P, *input_shape)
    probe_ms = median_ms(lambda: run.network.activation_stats(probe))
    loss_ms = median_ms(lambda: bookkeeping(run.steps_per_epoch, run.loss_every))
    print(f"{name} ({run.dataset.name}, {run.steps_per_epoch} steps/epoch, probe {len(probe)}):"
          f" epoch {epoch_ms:.0f} ms; probe pass {probe_ms:.2f} ms "
          f"({100 * probe_ms / epoch_ms:.3f} %); loss bookkeeping {loss_ms:.3f} ms "
          f"({100 * loss_ms / epoch_ms:.4f} %)", flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="fashion-mnist", choices=nncore.DATASETS)
    p.add_argument("--train-limit", type=int, help="fewer training images (shorter epoch)")
    args = p.parse_args(argv)
    print(f"probe batch: {PROBE_SIZE} samples, eval mode; median of {ROUNDS} runs")
    for name, model in NETWORKS.items():
        measure(name, model, args.dataset, args.train_limit)


if __name__ == "__main__":
    main()
