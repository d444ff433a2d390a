"""Median milliseconds per training step of nncore, and of PyTorch on the same architecture.

Each configuration trains for a fixed number of steps in float32 at batch 100 with Adam; a
step is what ``TrainingRun`` does (gather the batch, one forward + backward, read the loss,
update). When PyTorch is installed the same layer list, optimizer (default Adam) and thread
count are timed in the same run, in alternating rounds, and the ratio nncore/PyTorch printed
with its spread over the rounds. Finally the peak resident memory of training the mlp on all
of Fashion-MNIST for one epoch is measured in a fresh subprocess. ``--profile`` prints where
nncore's step spends its time instead: each layer's forward and backward, the loss, the update.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/speed.py [--threads N]
        [--steps-scale S] [--rounds R] [--dataset NAME] [--only NAME] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

import nncore
from nncore.spec import expand, infer_shapes, parse_layers

BATCH = 100
WARMUP = 5
ROUNDS = 5
LR = 0.001
PROFILE_STEPS = 20
# name -> (model spec, timed steps, PyTorch ms/step measured before nnq, target ratio)
CONFIGS = {
    "1 mlp 784-50-100-100-10 BN": ({"preset": "mlp", "hidden": [50, 100, 100],
                                    "batchnorm": True}, 400, 1.22, 0.6),
    "2 mlp 7-layer 100-wide BN": ({"preset": "mlp", "hidden": [100] * 6,
                                   "batchnorm": True}, 300, 2.18, 0.6),
    "3 simple_convnet": ({"preset": "simple_convnet"}, 60, 11.0, 1.0),
    "4 deep_convnet": ({"preset": "deep_convnet"}, 20, 37.6, 2.0),
}
MEMORY_SPEC = {
    "name": "bench-memory",
    "data": {"dataset": "fashion-mnist", "val_fraction": 0.1},
    "model": CONFIGS["1 mlp 784-50-100-100-10 BN"][0],
    "train": {"epochs": 1, "batch_size": BATCH, "optimizer": {"type": "adam", "lr": LR},
              "dtype": "float32"},
}
MEMORY_LIMIT_MIB = 1024


def takes_images(model_spec) -> bool:
    """Whether the network takes image-shaped inputs (has a spatial layer)."""
    return len(expand(model_spec, 10).input_shape) == 3


def median_ms(steps_fns, steps: int, rounds: int = ROUNDS) -> tuple[list[float], list[list[float]]]:
    """Median ms per step of each step function over all rounds, and per round, timed in
    alternating rounds so that load from other processes hits all of them alike."""
    for step in steps_fns:
        for _ in range(WARMUP):
            step()
    times = [[[] for _ in range(rounds)] for _ in steps_fns]
    per_round = max(1, steps // rounds)
    for r in range(rounds):
        for step, out in zip(steps_fns, times):
            for _ in range(per_round):
                start = time.perf_counter()
                step()
                out[r].append(time.perf_counter() - start)
    overall = [1000 * statistics.median([v for rnd in t for v in rnd]) for t in times]
    per_round_ms = [[1000 * statistics.median(rnd) for rnd in t] for t in times]
    return overall, per_round_ms


def nncore_step_fn(model_spec, x, t, backend):
    """A closure doing exactly one TrainingRun step on the next shuffled batch."""
    net = nncore.build(model_spec, x.shape[1:], 10, seed=0, dtype="float32", backend=backend)
    opt = nncore.make_optimizer({"type": "adam", "lr": LR})
    xp = net.xp
    x, t = xp.asarray(x), xp.asarray(t)
    rng = np.random.default_rng(0)
    order = iter(())
    synchronize = device_synchronizer(xp)

    def step():
        nonlocal order
        idx = next(order, None)
        if idx is None:
            perm = rng.permutation(len(x))
            order = iter(perm[i:i + BATCH] for i in range(0, len(perm) - BATCH + 1, BATCH))
            idx = next(order)
        grads = net.gradient(x[xp.asarray(idx)], t[xp.asarray(idx)])
        float(net.last_loss)
        opt.update(net.params, grads)
        synchronize()

    return step


def device_synchronizer(xp):
    """Waits for queued GPU work, so a step's time includes its backward and update (CuPy
    returns before the kernels finish); a no-op for NumPy."""
    if xp is np:
        return lambda: None
    return xp.cuda.get_current_stream().synchronize


def profile(model_spec, x, t, backend, steps: int = PROFILE_STEPS) -> None:
    """Median ms of each layer's forward and backward, the loss and the update in a step."""
    net = nncore.build(model_spec, x.shape[1:], 10, seed=0, dtype="float32", backend=backend)
    opt = nncore.make_optimizer({"type": "adam", "lr": LR})
    xp = net.xp
    synchronize = device_synchronizer(xp)
    x, t = xp.asarray(x[:BATCH]), xp.asarray(t[:BATCH])

    def timed(fn, *args, **kwargs):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        synchronize()
        return result, time.perf_counter() - start

    rows = {f"{i:2d} {type(layer).__name__}": [[], []] for i, layer in enumerate(net.layers)}
    other = {"loss": [], "update": [], "step": []}
    for step in range(WARMUP + steps):
        keep = step >= WARMUP
        start = time.perf_counter()
        out = x
        # in the order the network runs them (a ReLU before a max pool runs after it)
        order = getattr(net, "pass_order", range(len(net.layers)))
        row_list = list(rows.values())
        for i in order:
            out, dt = timed(net.layers[i].forward, out, train=True)
            row_list[i][0].append(dt)
        _, dt_forward_loss = timed(net.loss_layer.forward, out, t)
        dout, dt_backward_loss = timed(net.loss_layer.backward)
        dt_loss = dt_forward_loss + dt_backward_loss
        for i in reversed(order):
            if dout is None:  # below the first trainable layer nothing is computed
                break
            dout, dt = timed(net.layers[i].backward, dout)
            row_list[i][1].append(dt)
        grads = net.grads if set(net.grads) == set(net.params) else {  # older networks
            f"{i}.{key}": g for i, layer in enumerate(net.layers) for key, g in layer.grads.items()}
        _, dt_update = timed(opt.update, net.params, grads)
        if keep:
            other["loss"].append(dt_loss)
            other["update"].append(dt_update)
            other["step"].append(time.perf_counter() - start)

    def ms(values):
        return 1000 * statistics.median(values[-steps:]) if values else 0.0

    total = ms(other["step"])
    print(f"{'layer':16} {'forward ms':>10} {'backward ms':>11} {'share':>6}")
    for name, (fwd, bwd) in rows.items():
        both = ms(fwd) + ms(bwd)
        print(f"{name:16} {ms(fwd):10.2f} {ms(bwd):11.2f} {both / total:6.0%}")
    for name in ("loss", "update"):
        print(f"{name:16} {ms(other[name]):10.2f} {'':11} {ms(other[name]) / total:6.0%}")
    print(f"{'step':16} {total:10.2f}")


def torch_model(layers, input_shape):
    """The same expanded layer list as torch modules."""
    import torch.nn as tnn

    modules, shapes = [], infer_shapes(parse_layers(layers), input_shape)
    for layer, shape in zip(layers, shapes):
        kind = layer["type"]
        if kind == "affine":
            if len(shape) > 1:
                modules.append(tnn.Flatten())
            modules.append(tnn.Linear(int(np.prod(shape)), layer["units"]))
        elif kind == "conv":
            modules.append(tnn.Conv2d(shape[0], layer["filters"], layer["size"],
                                      layer["stride"], layer["pad"]))
        elif kind == "batchnorm":
            bn = tnn.BatchNorm1d if len(shape) == 1 else tnn.BatchNorm2d
            modules.append(bn(shape[0], eps=layer["eps"], momentum=layer["momentum"]))
        elif kind == "maxpool":
            modules.append(tnn.MaxPool2d(layer["size"], layer["stride"], layer["pad"]))
        elif kind == "dropout":
            modules.append(tnn.Dropout(layer["rate"]))
        elif kind == "flatten":
            modules.append(tnn.Flatten())
        else:
            modules.append({"relu": tnn.ReLU, "sigmoid": tnn.Sigmoid, "tanh": tnn.Tanh}[kind]())
    return tnn.Sequential(*modules)


def torch_step_fn(model_spec, x, t, device):
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    layers = nncore.expand_model(model_spec, x.shape[1:], 10)
    model = torch_model(layers, x.shape[1:]).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    x, t = torch.from_numpy(x).to(device), torch.from_numpy(t).to(device)
    gen = torch.Generator().manual_seed(0)
    order = iter(())

    def step():
        nonlocal order
        idx = next(order, None)
        if idx is None:
            perm = torch.randperm(len(x), generator=gen).to(device)
            order = iter(perm[i:i + BATCH] for i in range(0, len(perm) - BATCH + 1, BATCH))
            idx = next(order)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x[idx]), t[idx])
        loss.backward()
        opt.step()
        loss.item()

    return step


def thread_limits(threads: int):
    """Pin NumPy's BLAS (threadpoolctl) and PyTorch to the same thread count."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("threadpoolctl not installed: NumPy keeps its BLAS default thread count")
        return contextlib.nullcontext()
    return threadpool_limits(threads)


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def peak_rss_mib() -> float:
    """This process's peak RSS. Linux's VmHWM starts fresh at exec; ru_maxrss would also
    count the parent's memory at the time it spawned us, so it is only the fallback."""
    with contextlib.suppress(OSError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def memory_child() -> None:
    """Train MEMORY_SPEC for one epoch and print the peak RSS in MiB as JSON."""
    start = time.perf_counter()
    run = nncore.TrainingRun.from_spec(MEMORY_SPEC)
    metrics = run.fit()
    peak_mib = peak_rss_mib()
    print(json.dumps({"peak_mib": peak_mib, "train_samples": len(run.dataset.x_train),
                      "seconds": time.perf_counter() - start,
                      "test_acc": metrics[-1]["test_acc"]}))


def measure_memory() -> None:
    result = subprocess.run([sys.executable, __file__, "--memory-child"], capture_output=True,
                            text=True, env=dict(os.environ), check=False)
    if result.returncode != 0:
        print(f"memory: not measured ({result.stderr.strip().splitlines()[-1]})")
        return
    m = json.loads(result.stdout.strip().splitlines()[-1])
    verdict = "OK" if m["peak_mib"] < MEMORY_LIMIT_MIB else "OVER"
    print(f"memory: peak RSS {m['peak_mib']:.0f} MiB training config 1 on all of Fashion-MNIST "
          f"({m['train_samples']} train samples, 1 epoch, {m['seconds']:.1f} s, test acc "
          f"{m['test_acc']:.4f}); target < {MEMORY_LIMIT_MIB} MiB: {verdict}")


def load_inputs(name: str, flatten: bool):
    if name == "fashion-mnist":
        try:
            ds = nncore.load_dataset(name, flatten=flatten, val_fraction=0.0, train_limit=10000)
            return ds.x_train, ds.t_train
        except nncore.DataError as exc:
            print(f"({exc}; using synthetic data)")
    ds = nncore.load_dataset("synthetic", flatten=flatten, val_fraction=0.0, samples=2500)
    return ds.x_train, ds.t_train


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--steps-scale", type=float, default=1.0, help="multiply timed steps")
    p.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "synthetic"])
    p.add_argument("--backend", default="numpy", choices=list(nncore.backend.BACKENDS))
    p.add_argument("--only", help="run configurations whose name contains this")
    p.add_argument("--rounds", type=int, default=ROUNDS, help="alternating timing rounds")
    p.add_argument("--profile", action="store_true",
                   help="per-layer forward/backward times of nncore instead of the comparison")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_child:
        return memory_child()

    if args.profile:
        with thread_limits(args.threads):
            for name, (spec, *_rest) in CONFIGS.items():
                if args.only and args.only not in name:
                    continue
                print(f"== {name}: nncore {args.backend}, {args.threads} threads, float32, "
                      f"batch {BATCH}, median of {PROFILE_STEPS} steps")
                profile(spec, *load_inputs(args.dataset, flatten=not takes_images(spec)),
                        args.backend)
        return None
    if not args.no_memory:
        measure_memory()
    with_torch = torch_available()
    device = "cpu"
    if with_torch:
        import torch
        torch.set_num_threads(args.threads)
        if args.backend == "cupy" and torch.cuda.is_available():
            device = "cuda"
    print(f"nncore {args.backend} vs PyTorch {torch.__version__ if with_torch else '(absent)'} "
          f"{device}; float32, batch {BATCH}, Adam, {args.threads} threads, "
          f"median of timed steps after {WARMUP} warm-up steps, "
          f"alternating in {args.rounds} rounds")
    header = (f"{'configuration':30} {'steps':>5} {'nncore ms':>10} {'torch ms':>9} "
              f"{'ratio':>6} {'rounds':>11} {'target':>7} {'issue torch ms':>15}")
    print(header)
    with thread_limits(args.threads):
        for name, (spec, steps, issue_torch_ms, target) in CONFIGS.items():
            if args.only and args.only not in name:
                continue
            steps = max(1, int(steps * args.steps_scale) // args.rounds) * args.rounds
            x, t = load_inputs(args.dataset, flatten=not takes_images(spec))
            fns = [nncore_step_fn(spec, x, t, args.backend)]
            if with_torch:
                fns.append(torch_step_fn(spec, x, t, device))
            overall, rounds = median_ms(fns, steps, args.rounds)
            ours, theirs = (overall + [None])[:2]
            ratio = f"{ours / theirs:6.2f}" if theirs else "     -"
            spread = "          -"
            if theirs:
                per_round = [a / b for a, b in zip(*rounds)]
                spread = f"{min(per_round):5.2f}-{max(per_round):5.2f}"
            theirs_s = f"{theirs:9.2f}" if theirs else "        -"
            print(f"{name:30} {steps:5d} {ours:10.2f} {theirs_s} {ratio} {spread:>11} "
                  f"{target:6.1f}x {issue_torch_ms:15.2f}", flush=True)


if __name__ == "__main__":
    main()
