"""Tensors <-> model_tensors rows: raw little-endian C-order bytes, never pickle.

One row per tensor keeps BatchNorm running statistics next to the weights and
lets a reader verify each array by its sha256 without loading the rest. A row is
trusted only after its bytes match its sha256, nbytes, shape and dtype, and (with
``verified_state``) its name, shape and dtype match what the model's layers build:
a corrupted, truncated, re-shaped, missing or extra tensor is a ``CorruptTensor``
naming it, never numbers.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping

import numpy as np

from service.db.models import ModelTensor

NUMERIC_KINDS = "biuf"


class CorruptTensor(ValueError):
    """A stored tensor that cannot be trusted; ``tensor`` names it, ``problem`` says why."""

    def __init__(self, tensor: str, problem: str):
        super().__init__(f"tensor {tensor!r}: {problem}")
        self.tensor, self.problem = tensor, problem


def encode_tensor(name: str, array, role: str) -> ModelTensor:
    """A ModelTensor row for ``array`` (any backend: copied to host numpy first)."""
    host = np.asarray(array.get() if hasattr(array, "get") else array)
    host = np.ascontiguousarray(host, dtype=host.dtype.newbyteorder("<"))
    data = host.tobytes(order="C")
    return ModelTensor(
        name=name, role=role, dtype=host.dtype.name, shape=list(host.shape),
        nbytes=len(data), sha256=hashlib.sha256(data).hexdigest(), data=data)


def tensor_rows(state: Mapping[str, object], roles: Mapping[str, str]) -> list[ModelTensor]:
    """Rows for a network's ``state_dict()``; a name missing from ``roles`` is a bug."""
    return [encode_tensor(name, array, roles[name]) for name, array in state.items()]


def _row_dtype(row: ModelTensor) -> np.dtype:
    try:
        dtype = np.dtype(row.dtype)
    except (TypeError, ValueError):
        raise CorruptTensor(row.name, f"dtype {row.dtype!r} is not a NumPy dtype") from None
    if dtype.kind not in NUMERIC_KINDS:
        raise CorruptTensor(row.name, f"dtype {row.dtype!r} is not numeric")
    return dtype.newbyteorder("<")


def _row_shape(row: ModelTensor) -> tuple[int, ...]:
    shape = row.shape
    if not isinstance(shape, list) or not all(
            type(d) is int and d >= 0 for d in shape):
        raise CorruptTensor(row.name, f"shape {shape!r} is not a list of sizes")
    return tuple(shape)


def decode_tensor(row: ModelTensor) -> np.ndarray:
    """The stored array, checked against its row: byte count, sha256, then shape x dtype."""
    data = bytes(row.data) if row.data is not None else b""
    if len(data) != row.nbytes:
        raise CorruptTensor(row.name, f"{len(data)} stored bytes, but the row records "
                                      f"{row.nbytes} (truncated or overwritten)")
    if hashlib.sha256(data).hexdigest() != row.sha256:
        raise CorruptTensor(row.name, "stored bytes do not match their sha256")
    dtype, shape = _row_dtype(row), _row_shape(row)
    if math.prod(shape) * dtype.itemsize != len(data):
        raise CorruptTensor(row.name, f"shape {list(shape)} of {dtype.name} needs "
                                      f"{math.prod(shape) * dtype.itemsize} bytes, "
                                      f"{len(data)} are stored")
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.name, copy=True)


def state_from_rows(rows) -> dict[str, np.ndarray]:
    """A ``load_state_dict``-ready mapping from a model's tensor rows (each row checked
    against itself only; ``verified_state`` also checks them against the layers)."""
    return {row.name: decode_tensor(row) for row in rows}


def verified_state(rows, expected: Mapping[str, tuple[tuple[int, ...], np.dtype]]
                   ) -> dict[str, np.ndarray]:
    """The rows' arrays, checked against ``expected`` (name -> (shape, dtype), what the
    model's layers build) and against their own sha256, size, shape and dtype.

    Raises CorruptTensor naming the first tensor that is missing, extra, mis-shaped, of
    another dtype or corrupted; the cheap checks on the row come before any hashing."""
    rows = list(rows)
    stored = {row.name for row in rows}
    for name in expected:
        if name not in stored:
            raise CorruptTensor(name, "missing: the model's layers have this tensor, "
                                      "no row stores it")
    for row in rows:
        if row.name not in expected:
            raise CorruptTensor(row.name, "unexpected: the model's layers have no such tensor")
        shape, dtype = expected[row.name]
        if _row_shape(row) != tuple(shape):
            raise CorruptTensor(row.name, f"shape {list(row.shape)}, but the model's layers "
                                          f"give {list(shape)}")
        if _row_dtype(row) != np.dtype(dtype).newbyteorder("<"):
            raise CorruptTensor(row.name, f"dtype {row.dtype}, but the model's layers use "
                                          f"{np.dtype(dtype).name}")
    return {row.name: decode_tensor(row) for row in rows}
