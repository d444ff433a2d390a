"""Tensors <-> model_tensors rows: raw little-endian C-order bytes, never pickle.

One row per tensor keeps BatchNorm running statistics next to the weights and
lets a reader verify each array by its sha256 without loading the rest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np

from service.db.models import ModelTensor


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


def decode_tensor(row: ModelTensor) -> np.ndarray:
    """The stored array, checked against its sha256; a mismatch is corruption."""
    data = bytes(row.data)
    if hashlib.sha256(data).hexdigest() != row.sha256:
        raise ValueError(f"tensor {row.name!r}: stored bytes do not match their sha256")
    dtype = np.dtype(row.dtype).newbyteorder("<")
    return np.frombuffer(data, dtype=dtype).reshape(row.shape).astype(dtype.name, copy=True)


def state_from_rows(rows) -> dict[str, np.ndarray]:
    """A ``load_state_dict``-ready mapping from a model's tensor rows."""
    return {row.name: decode_tensor(row) for row in rows}
