"""A trained network in one ``.npz`` file, written by ``python -m nncore train``.

The file holds the network's tensors (running statistics included) plus a ``meta.json``
entry (a uint8 array of UTF-8 JSON) with the expanded layer list, input shape, class count,
dtype, data section and metrics, so ``nncore.build({"layers": ...})`` rebuilds it. No pickle.
"""

from __future__ import annotations

import json
import zipfile

import numpy as np

from nncore.errors import DataError
from nncore.network import Network, build
from nncore.state import state_from_bytes, state_to_bytes
from nncore.training import TrainingRun

META_KEY = "meta.json"


def save_model(path: str, run: TrainingRun) -> None:
    """Write the trained network of a run built by ``TrainingRun.from_spec`` and what is
    needed to rebuild and evaluate it to ``path`` (.npz)."""
    net = run.network
    meta = {"name": run.spec.name, "layers": net.layers_spec,
            "input_shape": list(net.input_shape), "num_classes": net.num_classes,
            "dtype": net.dtype.name, "data": run.spec.data.model_dump(),
            "data_fingerprint": run.dataset.fingerprint, "metrics": run.metrics,
            "model_epoch": run.model_epoch}
    state = net.state_dict()
    state[META_KEY] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with open(path, "wb") as f:
        f.write(state_to_bytes(state))


def load_model(path: str) -> tuple[Network, dict]:
    """Rebuild a network saved by ``save_model``; returns it with its metadata."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        state = state_from_bytes(data)
        meta = json.loads(state.pop(META_KEY).tobytes().decode())
        net = build({"layers": meta["layers"]}, tuple(meta["input_shape"]),
                    meta["num_classes"], dtype=meta["dtype"])
        net.load_state_dict(state)
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise DataError(f"{path}: not a model file written by 'python -m nncore train' "
                        f"({exc})") from exc
    return net, meta
