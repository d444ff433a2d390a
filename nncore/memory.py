"""How much memory a training run needs, estimated from shapes alone before it runs.

The parameter limit alone let a 2M-parameter convnet at batch 10,000 grow a worker to 8 GB:
what a step holds scales with the batch, not the weights. The estimate adds, layer by layer,
what a training step keeps between forward and backward and the working arrays it reuses
(results, masks, BatchNorm's centred input, max pooling's stacked windows, a convolution's
padded input and im2col columns: on a CPU those are built ``col_block_bytes`` at a time, on a
GPU for the whole batch), the peak of an eval-mode pass over ``EVAL_BATCH`` samples (the
val/test/train_acc evaluation, while the training arrays stay allocated), the weights with
their gradients, optimizer slots, ``keep_best`` copy and checkpoint copies, and the dataset.
It is meant to be a little above what a process measures (peak RSS growth), never a
fraction of it: ``RUNTIME_BYTES`` covers what a first run adds besides its arrays (modules
imported lazily, BLAS buffers, allocator slack); the interpreter and the libraries a worker
has loaded before (about 100 MB) are not included.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .backend import CPU_COL_BLOCK_BYTES
from .data.datasets import SYNTHETIC_TEST_FRACTION
from .layers.conv import FILTER_MULTIPLE, Geometry, sample_blocks
from .spec import JobSpec, infer_shapes, parse_layers
from .training import EVAL_BATCH

MB = 2**20
RUNTIME_BYTES = 48 * MB
# Extra arrays per parameter value each optimizer keeps (velocity, squared sums, Adam's m, v).
OPTIMIZER_SLOTS = {"sgd": 0, "momentum": 1, "nesterov": 1, "adagrad": 1, "rmsprop": 1,
                   "adam": 2}
# The IDX datasets' sizes: training and test images.
IDX_SAMPLES = (60_000, 10_000)
PIXELS = 28 * 28
# Arrays of the output's size a layer type holds through a step: its result, its input
# gradient and what it keeps for backward (masks, centred input, the ops' temporaries).
OUTPUT_COPIES = {"relu": 2.25, "sigmoid": 4, "tanh": 4, "batchnorm": 4, "dropout": 3,
                 "flatten": 0}


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
    """Bytes by what holds them; ``total`` is what the service compares with its limit."""

    runtime: int       # RUNTIME_BYTES
    parameters: int    # weights, gradients, optimizer slots, best-epoch and checkpoint copies
    activations: int   # a training step at ``batch_size``: kept arrays and layer scratch
    evaluation: int    # the peak of an eval pass over ``eval_batch`` samples
    data: int          # the dataset's arrays
    batch_size: int
    eval_batch: int

    @property
    def total(self) -> int:
        return (self.runtime + self.parameters + self.activations + self.evaluation
                + self.data)

    @property
    def megabytes(self) -> int:
        return math.ceil(self.total / MB)

    def describe(self) -> str:
        parts = (f"runtime {self.runtime / MB:.0f} MB", f"parameters {self.parameters / MB:.0f} MB",
                 f"training batch {self.batch_size}: {self.activations / MB:.0f} MB",
                 f"evaluation batch {self.eval_batch}: {self.evaluation / MB:.0f} MB",
                 f"data {self.data / MB:.0f} MB")
        return f"{self.megabytes} MB ({', '.join(parts)})"


def _conv_scratch(g: Geometry, n: int, filters: int, itemsize: int, budget) -> tuple[int, int]:
    """(bytes of the column and GEMM-result blocks, block size in samples) for n samples."""
    per_sample = g.rows * g.oh * g.row * itemsize
    block = max(hi - lo for lo, hi in sample_blocks(n, per_sample, budget))
    width = block * g.oh * g.row * itemsize
    return (g.rows + 1) * width + math.ceil(filters / FILTER_MULTIPLE) * FILTER_MULTIPLE * width, block


def _conv(layer, shape, out, n, itemsize, budget, *, train: bool) -> int:
    g = Geometry.of((n, *shape), layer.size, layer.size, layer.stride, layer.pad,
                    padded_rows=True)
    padded = g.flat_size(n) * itemsize
    scratch, block = _conv_scratch(g, n, layer.filters, itemsize, budget)
    result = n * math.prod(out) * itemsize
    if not train:
        return padded + scratch + result
    rows = math.ceil(layer.filters / FILTER_MULTIPLE) * FILTER_MULTIPLE
    dout = rows * block * g.oh * g.row * itemsize          # dout of a block, padded
    dcol = g.rows * block * g.oh * g.row * itemsize + g.flat_size(block) * itemsize
    dx = n * math.prod(shape) * itemsize
    if layer.stride != 1 or layer.pad >= layer.size:        # dx by col2im: dcol's blocks
        return padded + result + dout + scratch + dcol + dx
    # dx as a stride-1 correlation of dout, padded by size - 1 - pad: the forward path again
    back = Geometry.of((n, *out), layer.size, layer.size, 1, layer.size - 1 - layer.pad,
                       padded_rows=True)
    back_scratch, _ = _conv_scratch(back, n, shape[0], itemsize, budget)
    return padded + result + dout + max(scratch, back_scratch) + back.flat_size(n) * itemsize + dx


def _layer_bytes(layer, shape, out, n, itemsize, budget, *, train: bool) -> int:
    """What one layer holds for n samples: through a training step, or at its eval peak."""
    if layer.type == "conv":
        return _conv(layer, shape, out, n, itemsize, budget, train=train)
    inputs, outputs = n * math.prod(shape) * itemsize, n * math.prod(out) * itemsize
    if not train:
        return inputs + outputs
    if layer.type == "maxpool":
        padded = n * shape[0] * (shape[1] + 2 * layer.pad) * (shape[2] + 2 * layer.pad)
        return (layer.size ** 2 + 1) * outputs + padded * itemsize
    if layer.type == "affine":
        return outputs + inputs
    return int(OUTPUT_COPIES.get(layer.type, 3) * outputs)


def _activations(layers, shapes, n, itemsize, budget, num_classes) -> int:
    kept = sum(_layer_bytes(layer, shape, out, n, itemsize, budget, train=True)
               for layer, shape, out in zip(layers, shapes, shapes[1:]))
    batch = 2 * n * math.prod(shapes[0]) * itemsize       # the gathered batch, augmented
    return kept + batch + 3 * n * num_classes * itemsize  # softmax, its gradient


def _evaluation(layers, shapes, n, itemsize, budget) -> int:
    return max((_layer_bytes(layer, shape, out, n, itemsize, budget, train=False)
                for layer, shape, out in zip(layers, shapes, shapes[1:])), default=0)


def estimate_memory(layers: list[dict], input_shape, num_classes: int, *, batch_size: int,
                    dtype="float32", optimizer: str = "adam", keep_best: bool = False,
                    eval_batch: int = EVAL_BATCH, train_samples: int | None = None,
                    eval_samples: int | None = None, data_bytes: int = 0,
                    backend: str = "numpy") -> MemoryEstimate:
    """The estimate for an expanded layer list. ``train_samples`` caps the training batch (a
    batch never exceeds the training set) and adds the last, smaller batch's convolution
    inputs; ``eval_samples`` (the largest evaluated set) caps the evaluation batch."""
    specs = parse_layers(layers)
    shapes = infer_shapes(specs, input_shape)
    itemsize = np.dtype(dtype).itemsize
    budget = CPU_COL_BLOCK_BYTES if backend == "numpy" else None
    n = min(batch_size, train_samples) if train_samples else batch_size
    params = sum(spec.param_count(shape) for spec, shape in zip(specs, shapes))
    slots = OPTIMIZER_SLOTS.get(optimizer, 2)
    # weights + gradients + slots, the best epoch's copy, a checkpoint's arrays and its bytes
    copies = 2 + slots + keep_best + 2 * (1 + slots)
    activations = _activations(specs, shapes, n, itemsize, budget, num_classes)
    last = train_samples % n if train_samples else 0
    if last:  # a convolution keeps a padded input per batch size it has seen
        activations += sum(Geometry.of((last, *shape), s.size, s.size, s.stride, s.pad,
                                       padded_rows=True).flat_size(last) * itemsize
                           for s, shape in zip(specs, shapes) if s.type == "conv")
    eval_batch = min(eval_batch, eval_samples) if eval_samples else eval_batch
    evaluation = _evaluation(specs, shapes, eval_batch, itemsize, budget)
    return MemoryEstimate(runtime=RUNTIME_BYTES, parameters=params * itemsize * copies, activations=activations,
                          evaluation=evaluation, data=data_bytes, batch_size=n,
                          eval_batch=eval_batch)


def dataset_footprint(spec: JobSpec) -> tuple[int, int, int]:
    """(training samples, the largest evaluated set, bytes of the dataset in memory): the
    decoded files (uint8 for the
    IDX sets, float32 for synthetic), the float32 inputs kept and, for another dtype, the
    run's copy in it."""
    data, itemsize = spec.data, np.dtype(spec.train.dtype).itemsize
    if data.dataset == "synthetic":
        n_test = round(data.samples * SYNTHETIC_TEST_FRACTION)
        pool, test, decoded = data.samples - n_test, n_test, data.samples * 4
    else:
        pool, test = IDX_SAMPLES
        decoded = (pool + test) * PIXELS
    n_val = round(pool * data.val_fraction)
    train = pool - n_val if data.train_limit is None else min(pool - n_val, data.train_limit)
    kept = (train + n_val + test) * PIXELS
    copy = kept * itemsize if itemsize != 4 else 0
    return max(train, 1), max(train, n_val, test), decoded + kept * 4 + copy


def estimate_job_memory(spec: JobSpec) -> MemoryEstimate:
    """The estimate for a parsed job spec: its expanded model, train.batch_size, dtype,
    optimizer and keep_best, its dataset's size, and the evaluation batch."""
    expansion, config = spec.expansion, spec.train
    train_samples, eval_samples, data_bytes = dataset_footprint(spec)
    backend = "cupy" if spec.device == "gpu" else "numpy"
    return estimate_memory(expansion.layers, expansion.input_shape, spec.num_classes,
                           batch_size=config.batch_size, dtype=config.dtype,
                           optimizer=config.optimizer.type, keep_best=config.keep_best,
                           train_samples=train_samples, eval_samples=eval_samples,
                           data_bytes=data_bytes,
                           backend=backend)
