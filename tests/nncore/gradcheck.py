"""Central-difference gradients in float64, for checking every backward pass."""
import numpy as np

EPS = 1e-6


def numeric_grad(f, x, indices=None):
    """d f() / d x at the given flat indices (all when None); x is perturbed in place."""
    flat = x.reshape(-1)
    idx = range(flat.size) if indices is None else indices
    grad = np.zeros(flat.size)
    for i in idx:
        old = flat[i]
        flat[i] = old + EPS
        plus = f()
        flat[i] = old - EPS
        minus = f()
        flat[i] = old
        grad[i] = (plus - minus) / (2 * EPS)
    return grad.reshape(x.shape)


def relative_error(analytic, numeric):
    a, n = np.asarray(analytic, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    return float(np.linalg.norm(a - n) / max(np.linalg.norm(a) + np.linalg.norm(n), 1e-300))


def sample_indices(size, count, rng):
    return rng.choice(size, size=min(size, count), replace=False)
