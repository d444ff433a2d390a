"""Array backends: NumPy always, CuPy when asked for and importable. One implementation serves both."""
import operator

import numpy as np

BACKENDS = ("numpy", "cupy")
# On the CPU a convolution builds and multiplies its im2col columns a block of samples at a
# time, so that a block is still in cache when the GEMM reads it: on a 2-core Zen 4 (1 MiB L2
# per core) 3 MiB blocks made a deep_convnet step 25 % faster than the whole batch with one
# BLAS thread and ~20 % faster with two on an idle machine. Larger blocks mean fewer GEMM calls,
# which helps when another process keeps a core busy (OpenBLAS synchronises its threads at
# every call); in bench/speed.py's alternating runs 12 MiB blocks still came out slower and
# less steady. A GPU takes the whole batch.
CPU_COL_BLOCK_BYTES = 3 * 2**20


def get_xp(name: str = "numpy"):
    """Return the array module for a backend name."""
    if name == "numpy":
        return np
    if name == "cupy":
        try:
            import cupy
        except ImportError as exc:  # pragma: no cover - depends on the host
            raise RuntimeError("backend 'cupy' was asked for but CuPy is not importable") from exc
        return cupy
    raise ValueError(f"unknown backend {name!r}; expected one of {BACKENDS}")


def array_module(a):
    """The module (NumPy or CuPy) an array belongs to."""
    if isinstance(a, np.ndarray) or not type(a).__module__.startswith("cupy"):
        return np
    import cupy

    return cupy


def col_block_bytes(xp) -> int | None:
    """Bytes of im2col columns to build at once; None means the whole batch."""
    return CPU_COL_BLOCK_BYTES if xp is np else None


def cupy_available() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - any failure means no usable GPU
        return False


def to_numpy(a) -> np.ndarray:
    """A host NumPy array for any backend's array (a no-op for NumPy)."""
    get = getattr(a, "get", None)
    return get() if get is not None and not isinstance(a, np.ndarray) else np.asarray(a)


class FlatTensors(dict):
    """Named tensors that are consecutive views of one contiguous 1-D array, ``flat``.

    An element-wise rule (an optimizer step, weight decay) then runs once over ``flat``
    instead of once per tensor: one call instead of dozens, which is most of an MLP's
    optimizer time on a CPU and a kernel launch per tensor saved on a GPU.
    """

    def __init__(self, shapes: dict, xp, dtype):
        sizes = [int(np.prod(shape)) for shape in shapes.values()]
        self.flat = xp.zeros(sum(sizes), dtype=dtype)
        self.layout = tuple((name, tuple(shape)) for name, shape in shapes.items())
        start = 0
        views = {}
        for (name, shape), size in zip(self.layout, sizes):
            views[name] = self.flat[start:start + size].reshape(shape)
            start += size
        super().__init__(views)
        self._views = tuple(views.values())

    def intact(self) -> bool:
        """Whether every name still maps to its view of ``flat`` (nothing was rebound)."""
        return len(self) == len(self._views) and all(map(operator.is_, self.values(), self._views))

    @classmethod
    def like(cls, other: "FlatTensors") -> "FlatTensors":
        """Zeros in the same layout, dtype and backend as ``other``."""
        return cls(dict(other.layout), array_module(other.flat), other.flat.dtype)


def same_layout(a, b) -> bool:
    """Whether a and b are intact FlatTensors with the same names, shapes and dtype, in order."""
    return (isinstance(a, FlatTensors) and isinstance(b, FlatTensors)
            and a.layout == b.layout and a.flat.dtype == b.flat.dtype
            and a.intact() and b.intact())
