"""Optimizers with state keyed by tensor name, updated in place, serialisable.

Every step works in place with one reused scratch array, allocating nothing. When the network
hands over its parameters and gradients as ``FlatTensors`` (consecutive views of one array
each) the state lives in that layout too and a step is a few operations over the whole model.

Update rules and defaults follow PyTorch where the book differs (documented per class):
Momentum/Nesterov accumulate the gradient and scale by lr at the step; AdaGrad and RMSprop
add eps outside the square root; Adam bias-corrects both moments with eps added after the
corrected square root (PyTorch), where the book folds the correction into the learning rate
and adds eps = 1e-7 to the uncorrected root.
"""
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field, TypeAdapter

from .backend import FlatTensors, array_module, same_layout, to_numpy
from .schema import Strict, literal_value, tag_of, tagged_union, validate

Lr = Annotated[float, Field(gt=0.0, le=10.0)]
Decay = Annotated[float, Field(ge=0.0, lt=1.0)]
Eps = Annotated[float, Field(gt=0.0, le=1.0)]
DEFAULT_OPTIMIZER = "adam"

OPTIMIZERS: dict[str, type["Optimizer"]] = {}


class Optimizer:
    """An update rule; ``Settings`` (a pydantic model beside it) declares its fields, defaults
    and bounds. Defining a subclass with its own ``Settings`` registers it in ``OPTIMIZERS``
    under the settings' ``type``.
    """

    Settings: ClassVar[type[Strict]]
    slots: tuple = ()  # per-tensor state arrays, e.g. ("m", "v")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "Settings" in cls.__dict__:
            OPTIMIZERS[literal_value(cls.Settings, "type")] = cls

    def __init__(self, **hyper):
        settings = validate(self.Settings, {"type": self.name, **hyper})
        self.hyper = settings.model_dump(exclude={"type"})
        self.t = 0
        self.state: dict[str, dict] = {slot: {} for slot in self.slots}
        self._scratch: dict = {}

    @property
    def name(self) -> str:
        return literal_value(self.Settings, "type")

    @property
    def lr(self) -> float:
        """The learning rate of the next step; a schedule may set it between steps."""
        return self.hyper["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        self.hyper["lr"] = float(value)

    def update(self, params: dict, grads: dict) -> None:
        """One step; every array in ``params`` is changed in place."""
        self.t += 1
        if same_layout(params, grads):
            self._step(params.flat, grads.flat,
                       **{slot: self._flat_state(slot, params) for slot in self.slots})
            return
        for key, p in params.items():
            slots = {}
            for slot in self.slots:
                buf = self.state[slot].get(key)
                if buf is None:
                    buf = self.state[slot][key] = array_module(p).zeros_like(p)
                slots[slot] = buf
            self._step(p, grads[key], **slots)

    def _flat_state(self, slot: str, params: FlatTensors):
        """The slot's state as one array laid out like ``params``; state kept per tensor (new,
        or just loaded from a checkpoint) is copied into that layout once."""
        state = self.state[slot]
        if not same_layout(state, params):
            flat = FlatTensors.like(params)
            for key, value in state.items():
                flat[key][...] = array_module(flat.flat).asarray(value)
            self.state[slot] = state = flat
        return state.flat

    def _tmp(self, p):
        """A scratch array shaped like p, reused by every step."""
        key = (p.shape, p.dtype.str, array_module(p).__name__)
        buf = self._scratch.get(key)
        if buf is None:
            buf = self._scratch[key] = array_module(p).empty_like(p)
        return buf

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


class SgdSpec(Strict):
    type: Literal["sgd"]
    lr: Lr = 0.01


class SGD(Optimizer):
    Settings = SgdSpec

    def _step(self, p, g):
        p -= array_module(p).multiply(g, self.hyper["lr"], out=self._tmp(p))


class MomentumSpec(Strict):
    type: Literal["momentum"]
    lr: Lr = 0.01
    momentum: Decay = 0.9


class Momentum(Optimizer):
    """v = mu*v + g; p -= lr*v (the book's v = mu*v - lr*g is the same for a fixed lr)."""

    Settings = MomentumSpec
    slots = ("v",)

    def _step(self, p, g, v):
        v *= self.hyper["momentum"]
        v += g
        p -= array_module(p).multiply(v, self.hyper["lr"], out=self._tmp(p))


class NesterovSpec(MomentumSpec):
    type: Literal["nesterov"]


class Nesterov(Momentum):
    """PyTorch's form: v = mu*v + g; p -= lr*(g + mu*v)."""

    Settings = NesterovSpec

    def _step(self, p, g, v):
        mu = self.hyper["momentum"]
        v *= mu
        v += g
        tmp = array_module(p).multiply(v, mu, out=self._tmp(p))
        tmp += g
        tmp *= self.hyper["lr"]
        p -= tmp


class AdaGradSpec(Strict):
    type: Literal["adagrad"]
    lr: Lr = 0.01
    eps: Eps = 1e-10


class AdaGrad(Optimizer):
    Settings = AdaGradSpec
    slots = ("h",)

    def _step(self, p, g, h):
        xp, tmp = array_module(p), self._tmp(p)
        h += xp.multiply(g, g, out=tmp)
        _descend(p, g, xp.sqrt(h, out=tmp), self.hyper["lr"], self.hyper["eps"])


class RMSpropSpec(Strict):
    type: Literal["rmsprop"]
    lr: Lr = 0.01
    alpha: Decay = 0.99
    eps: Eps = 1e-8


class RMSprop(Optimizer):
    Settings = RMSpropSpec
    slots = ("h",)

    def _step(self, p, g, h):
        xp, tmp, a = array_module(p), self._tmp(p), self.hyper["alpha"]
        h *= a
        xp.multiply(g, g, out=tmp)
        tmp *= 1 - a
        h += tmp
        _descend(p, g, xp.sqrt(h, out=tmp), self.hyper["lr"], self.hyper["eps"])


class AdamSpec(Strict):
    type: Literal["adam"] = DEFAULT_OPTIMIZER
    lr: Lr = 0.001
    beta1: Decay = 0.9
    beta2: Decay = 0.999
    eps: Eps = 1e-8


class Adam(Optimizer):
    """PyTorch's Adam: p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)."""

    Settings = AdamSpec
    slots = ("m", "v")

    def update(self, params, grads):
        b1, b2 = self.hyper["beta1"], self.hyper["beta2"]
        t = self.t + 1
        self._step_size = self.hyper["lr"] / (1 - b1 ** t)
        self._root_bc2 = (1 - b2 ** t) ** 0.5
        super().update(params, grads)

    def _step(self, p, g, m, v):
        xp, tmp = array_module(p), self._tmp(p)
        b1, b2 = self.hyper["beta1"], self.hyper["beta2"]
        m *= b1
        m += xp.multiply(g, 1 - b1, out=tmp)
        v *= b2
        xp.multiply(g, g, out=tmp)
        tmp *= 1 - b2
        v += tmp
        denom = xp.sqrt(v, out=tmp)
        denom /= self._root_bc2
        denom += self.hyper["eps"]
        step = xp.divide(m, denom, out=tmp)
        step *= self._step_size
        p -= step


def _descend(p, g, root, lr, eps):
    """p -= lr * g / (root + eps), in place; ``root`` is scratch and is overwritten."""
    root += eps
    step = array_module(p).divide(g, root, out=root)
    step *= lr
    p -= step


OptimizerSpec = tagged_union({name: cls.Settings for name, cls in OPTIMIZERS.items()},
                             tag_of("type", DEFAULT_OPTIMIZER), "optimizer")
_OPTIMIZER_SPEC = TypeAdapter(OptimizerSpec)


def make_optimizer(spec) -> Optimizer:
    """``{"type": "adam", "lr": 0.001, ...}`` (or its parsed settings) -> an optimizer;
    unknown types or options raise SpecError (a ValueError) naming the field."""
    settings = validate(_OPTIMIZER_SPEC, spec) if isinstance(spec, dict) else spec
    return OPTIMIZERS[settings.type](**settings.model_dump(exclude={"type"}))
