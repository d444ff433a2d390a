"""(De)serialisation of named tensors as ``.npz``; loading never unpickles."""
import io

import numpy as np

from .backend import to_numpy


def state_to_bytes(state: dict) -> bytes:
    """Pack name -> array into ``.npz`` bytes (host copies of device arrays)."""
    buf = io.BytesIO()
    np.savez(buf, **{name: to_numpy(a) for name, a in state.items()})
    return buf.getvalue()


def state_from_bytes(data: bytes) -> dict[str, np.ndarray]:
    """Unpack ``.npz`` bytes; object arrays are refused (``allow_pickle=False``)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}
