"""nncore.memory's estimate against what training really takes, and its shape.

Each measured model trains one epoch in a fresh interpreter; the growth of its peak resident
set (VmHWM) from just before the run is compared with the estimate: the estimate is meant to
be a little above, and must stay within 0.5x-2x of it.
"""

from __future__ import annotations

import glob
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

import nncore
from nncore.memory import MB, RUNTIME_BYTES, estimate_job_memory, estimate_memory

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LIMIT_MB = 4096  # NNQ_MAX_JOB_MEMORY_MB's default
MEASURE = """
import json, re, sys
import numpy as np
import nncore
def hwm():
    return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) * 1024
spec = nncore.parse_spec(json.loads(sys.argv[1]))
np.ones((64, 64)) @ np.ones((64, 64))
before = hwm()
nncore.TrainingRun.from_spec(spec).fit()
print(hwm() - before)
"""
MEASURED = {
    "mlp": ({"preset": "mlp", "hidden": [1024, 1024], "batchnorm": True, "dropout": 0.2}, 2000),
    "simple_convnet": ({"preset": "simple_convnet"}, 500),
    "deep_convnet": ({"preset": "deep_convnet"}, 1000),
}


def _spec(model: dict, batch_size: int, **data) -> dict:
    return {"data": {"dataset": "synthetic", "samples": 3000, **data}, "model": model,
            "train": {"epochs": 1, "batch_size": batch_size}}


def _measured_growth(spec: dict) -> int:
    out = subprocess.run([sys.executable, "-c", MEASURE, json.dumps(spec)], check=True,
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    return int(out.stdout.split()[-1])


@pytest.mark.parametrize("name", MEASURED)
def test_the_estimate_is_within_half_and_twice_the_measured_peak(name):
    model, batch = MEASURED[name]
    spec = _spec(model, batch)
    estimate = estimate_job_memory(nncore.parse_spec(spec)).total
    grown = _measured_growth(spec)
    assert 0.5 * grown <= estimate <= 2 * grown, (name, estimate / MB, grown / MB)


def test_activation_memory_grows_with_the_batch_and_the_widths():
    layers = nncore.expand_model({"preset": "mlp", "hidden": [256]}, (784,), 10)
    wide = nncore.expand_model({"preset": "mlp", "hidden": [4096]}, (784,), 10)
    small, large = (estimate_memory(layers, (784,), 10, batch_size=b).activations
                    for b in (100, 10_000))
    assert large > 50 * small
    assert estimate_memory(wide, (784,), 10, batch_size=100).activations > 4 * small
    float64 = estimate_memory(layers, (784,), 10, batch_size=100, dtype="float64")
    assert float64.activations == 2 * small


def test_cpu_blocks_bound_the_im2col_columns_a_gpu_takes_the_whole_batch():
    layers = nncore.expand_model({"preset": "simple_convnet"}, (1, 28, 28), 10)
    cpu, gpu = (estimate_memory(layers, (1, 28, 28), 10, batch_size=5000, backend=b)
                for b in ("numpy", "cupy"))
    assert gpu.activations > cpu.activations + 5000 * 30 * 24 * 28 * 25 * 4 // 2


def test_optimizer_state_and_keep_best_count_as_copies_of_the_weights():
    layers = nncore.expand_model({"preset": "mlp", "hidden": [1000]}, (784,), 10)
    sgd, adam = (estimate_memory(layers, (784,), 10, batch_size=100, optimizer=o).parameters
                 for o in ("sgd", "adam"))
    best = estimate_memory(layers, (784,), 10, batch_size=100, keep_best=True).parameters
    per_copy = (784 + 1) * 1000 * 4 + (1000 + 1) * 10 * 4
    assert adam - sgd == 6 * per_copy   # m and v, in memory and twice in a checkpoint
    assert best - adam == per_copy


def test_the_operators_convnet_at_batch_10000_is_far_above_the_default_limit():
    spec = nncore.parse_spec({"data": {"dataset": "mnist"}, "model": {"preset": "deep_convnet"},
                              "train": {"batch_size": 10_000}})
    estimate = estimate_job_memory(spec)
    assert estimate.megabytes > 2 * DEFAULT_LIMIT_MB
    assert estimate.batch_size == 10_000 and "training batch 10000" in estimate.describe()


def test_a_batch_never_exceeds_the_training_set():
    spec = nncore.parse_spec(_spec({"preset": "mlp"}, 10_000))
    assert estimate_job_memory(spec).batch_size == 2160  # 3000 - 20 % test - 10 % val


def _example_specs():
    for path in sorted(glob.glob(str(ROOT / "examples" / "**" / "*.json"), recursive=True)):
        document = json.loads(Path(path).read_text())
        spec = document.get("base", document)
        if "model" in spec:
            yield Path(path).relative_to(ROOT).as_posix(), spec


def test_every_example_fits_the_default_limit():
    examples = dict(_example_specs())
    assert len(examples) >= 15
    sizes = {path: estimate_job_memory(nncore.parse_spec(spec)).megabytes
             for path, spec in examples.items()}
    assert max(sizes.values()) <= DEFAULT_LIMIT_MB / 4, sizes
    assert min(sizes.values()) >= RUNTIME_BYTES / MB


def _random_layers(rng) -> list[dict]:
    kinds = ["conv", "maxpool", "relu", "batchnorm", "dropout", "sigmoid", "tanh", "flatten",
             "affine"]
    layers = []
    for kind in rng.choices(kinds, k=rng.randint(1, 6)):
        if kind == "conv":
            layers.append({"type": "conv", "filters": rng.randint(1, 64), "size": rng.randint(1, 7),
                           "stride": rng.randint(1, 3), "pad": rng.randint(0, 4)})
        elif kind == "maxpool":
            layers.append({"type": "maxpool", "size": rng.randint(1, 4),
                           "stride": rng.randint(1, 3), "pad": rng.randint(0, 1)})
        elif kind == "affine":
            layers.append({"type": "affine", "units": rng.randint(1, 300)})
        else:
            layers.append({"type": kind})
    return [*layers, {"type": "affine", "units": 10}]


def test_any_valid_spec_gets_an_estimate_never_an_exception():
    """The service estimates every submitted spec: an odd geometry must not become a 500."""
    rng = random.Random(0)
    estimated = 0
    for _ in range(1500):
        spec = {"data": {"dataset": rng.choice(["mnist", "synthetic"])},
                "model": {"layers": _random_layers(rng)},
                "train": {"batch_size": rng.randint(1, 10_000),
                          "dtype": rng.choice(["float32", "float64"]),
                          "keep_best": rng.random() < 0.5},
                "device": rng.choice(["cpu", "gpu"])}
        try:
            parsed = nncore.parse_spec(spec)
        except nncore.SpecError:
            continue
        estimate = estimate_job_memory(parsed)
        assert min(estimate.parameters, estimate.activations, estimate.evaluation) >= 0
        estimated += 1
    assert estimated > 500
