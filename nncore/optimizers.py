"""Optimizers with state keyed by tensor name, updated in place, serialisable.

Update rules and defaults follow PyTorch where the book differs (documented per class):
Momentum/Nesterov accumulate the gradient and scale by lr at the step; AdaGrad and RMSprop
add eps outside the square root; Adam bias-corrects both moments with eps added after the
corrected square root (PyTorch), where the book folds the correction into the learning rate
and adds eps = 1e-7 to the uncorrected root.
"""
import numpy as np

from .backend import to_numpy


class Optimizer:
    defaults: dict = {}
    slots: tuple = ()  # per-tensor state arrays, e.g. ("m", "v")

    def __init__(self, **hyper):
        unknown = set(hyper) - set(self.defaults)
        if unknown:
            raise ValueError(f"unknown {self.name} options: {', '.join(sorted(unknown))}")
        self.hyper = {**self.defaults, **hyper}
        if not self.hyper["lr"] > 0:
            raise ValueError("lr must be > 0")
        self.t = 0
        self.state: dict[str, dict] = {slot: {} for slot in self.slots}

    @property
    def name(self):
        return type(self).__name__.lower()

    def update(self, params: dict, grads: dict) -> None:
        """One step; every array in ``params`` is changed in place."""
        self.t += 1
        for key, p in params.items():
            slots = {}
            for slot in self.slots:
                buf = self.state[slot].get(key)
                if buf is None:
                    buf = self.state[slot][key] = p * 0
                slots[slot] = buf
            self._step(p, grads[key], **slots)

    def _step(self, p, g, **slots):
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        out = {"t": np.array(self.t, dtype=np.int64)}
        for slot, tensors in self.state.items():
            out.update({f"{slot}/{key}": to_numpy(a).copy() for key, a in tensors.items()})
        return out

    def load_state_dict(self, state: dict, xp=np) -> None:
        self.t = int(state["t"])
        self.state = {slot: {} for slot in self.slots}
        for name, value in state.items():
            slot, _, key = name.partition("/")
            if slot in self.state:
                self.state[slot][key] = xp.array(value)


class SGD(Optimizer):
    defaults = {"lr": 0.01}

    def _step(self, p, g):
        p -= self.hyper["lr"] * g


class Momentum(Optimizer):
    """v = mu*v + g; p -= lr*v (the book's v = mu*v - lr*g is the same for a fixed lr)."""

    defaults = {"lr": 0.01, "momentum": 0.9}
    slots = ("v",)

    def _step(self, p, g, v):
        v *= self.hyper["momentum"]
        v += g
        p -= self.hyper["lr"] * v


class Nesterov(Momentum):
    """PyTorch's form: v = mu*v + g; p -= lr*(g + mu*v)."""

    def _step(self, p, g, v):
        mu = self.hyper["momentum"]
        v *= mu
        v += g
        p -= self.hyper["lr"] * (g + mu * v)


class AdaGrad(Optimizer):
    defaults = {"lr": 0.01, "eps": 1e-10}
    slots = ("h",)

    def _step(self, p, g, h):
        h += g * g
        p -= self.hyper["lr"] * g / (h ** 0.5 + self.hyper["eps"])


class RMSprop(Optimizer):
    defaults = {"lr": 0.01, "alpha": 0.99, "eps": 1e-8}
    slots = ("h",)

    def _step(self, p, g, h):
        a = self.hyper["alpha"]
        h *= a
        h += (1 - a) * g * g
        p -= self.hyper["lr"] * g / (h ** 0.5 + self.hyper["eps"])


class Adam(Optimizer):
    """PyTorch's Adam: p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)."""

    defaults = {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    slots = ("m", "v")

    def update(self, params, grads):
        b1, b2 = self.hyper["beta1"], self.hyper["beta2"]
        t = self.t + 1
        self._step_size = self.hyper["lr"] / (1 - b1 ** t)
        self._root_bc2 = (1 - b2 ** t) ** 0.5
        super().update(params, grads)

    def _step(self, p, g, m, v):
        b1, b2 = self.hyper["beta1"], self.hyper["beta2"]
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        denom = v ** 0.5
        denom /= self._root_bc2
        denom += self.hyper["eps"]
        p -= self._step_size * (m / denom)


OPTIMIZERS = {cls.__name__.lower(): cls for cls in (SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam)}


def make_optimizer(spec: dict) -> Optimizer:
    """``{"type": "adam", "lr": 0.001, ...}`` -> an optimizer; unknown types or options raise."""
    options = dict(spec)
    kind = options.pop("type", None)
    if kind not in OPTIMIZERS:
        raise ValueError(f"optimizer type must be one of {', '.join(OPTIMIZERS)}, got {kind!r}")
    return OPTIMIZERS[kind](**options)
