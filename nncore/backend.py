"""Array backends: NumPy always, CuPy when asked for and importable. One implementation serves both."""
import numpy as np

BACKENDS = ("numpy", "cupy")


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
