"""The layer protocol every nncore layer follows, and the registry of layer types.

A layer type is declared once, as a ``LayerSpec`` subclass next to its layer: its fields,
defaults and bounds (pydantic), its output shape, its parameter count and how it is built.
Declaring the subclass registers it in ``LAYERS``; validation, expansion, parameter counts,
``build`` and the service's schema are all derived from that registry.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, ClassVar

import numpy as np

from ..backend import array_module
from ..schema import Strict, literal_value


class Layer:
    """``forward(x, *, train)`` caches what ``backward(dout) -> dx`` needs.

    ``params`` and ``grads`` share keys; ``buffers`` hold non-trainable state (BatchNorm's running
    statistics) that is saved with the model. Every layer takes ``train``, so no caller ever asks a
    layer what it is. ``backward`` never writes into ``dout``.

    Results of a training-mode ``forward`` and of ``backward`` may live in memory the layer
    reuses on its next training call (``result_array``): use them within the step, copy what
    must outlive it. Eval-mode results are always new arrays.

    A gradient already in ``grads`` when ``backward`` runs is an array to write into (the
    network's preallocated buffer); a layer may also replace it. With ``needs_input_grad``
    False (the network's first trainable layer: nothing below it learns) ``backward`` only
    computes the parameter gradients and returns None.
    """

    needs_input_grad: bool = True
    _scratch: Scratch | None = None

    def __init__(self):
        self.params: dict = {}
        self.grads: dict = {}
        self.buffers: dict = {}

    def forward(self, x, *, train: bool):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    def scratch(self, like) -> Scratch:
        """This layer's reusable working arrays, made on first use on ``like``'s backend."""
        if self._scratch is None:
            self._scratch = Scratch(array_module(like))
        return self._scratch

    def result_array(self, role: str, shape: tuple, like, *, train: bool):
        """Where a result goes. In training: memory this layer hands out again on its next
        training call (by then the network has consumed the result), so a step allocates and
        page-faults nothing; in eval mode a new array, which the caller may keep."""
        if train:
            return self.scratch(like).empty(role, shape, like.dtype)
        return array_module(like).empty(shape, dtype=like.dtype)

    def grad_buffer(self, key: str, param):
        """The array the gradient of ``param`` goes into: the one in ``grads`` when it fits,
        else a new one (kept in ``grads``)."""
        grad = self.grads.get(key)
        if grad is None or grad.shape != param.shape or grad.dtype != param.dtype:
            grad = self.grads[key] = array_module(param).empty_like(param)
        return grad


CACHE_LINE = 64  # bytes; AVX-512 loads that straddle two lines cost two
PAGE = 4096
# Large buffers from the allocator all start at the same offset within a 4 KiB page; a copy or
# GEMM streaming between two of them then hits 4K aliasing (loads wait on unrelated stores at
# the same page offset), which made whole deep_convnet steps twice as slow in some processes.
# Each scratch buffer starts at the next cache line of the page instead (a prime stride).
PAGE_OFFSET_STRIDE = 37
_page_offsets = itertools.count(0, PAGE_OFFSET_STRIDE)


class Scratch:
    """Working arrays a layer reuses from one call to the next, reallocated only when they no
    longer fit: large temporaries then cost neither an allocation nor fresh pages each step.
    Two arrays in use at the same time need two roles."""

    def __init__(self, xp):
        self.xp = xp
        self._flat: dict = {}    # role -> 1-D array, at least as large as asked for
        self._exact: dict = {}   # role -> array of exactly the shape last asked for

    def empty(self, role: str, shape: tuple, dtype):
        """An uninitialised contiguous array of ``shape``."""
        size = math.prod(shape)
        buf = self._flat.get(role)
        if buf is None or buf.size < size or buf.dtype != dtype:
            buf = self._flat[role] = self._aligned(size, np.dtype(dtype))
        return buf[:size].reshape(shape)

    def _aligned(self, size: int, dtype: np.dtype):
        """size values starting on a cache line, each new buffer at another offset within a
        page (see PAGE_OFFSETS)."""
        if self.xp is not np:
            return self.xp.empty(size, dtype=dtype)
        raw = np.empty(size + PAGE // dtype.itemsize, dtype=dtype)
        offset = next(_page_offsets) % (PAGE // CACHE_LINE) * CACHE_LINE
        start = ((offset - raw.ctypes.data) % PAGE) // dtype.itemsize
        return raw[start:start + size]

    def zeroed_once(self, role: str, shape: tuple, dtype):
        """An array zeroed when (re)allocated and otherwise handed back as the last caller left
        it: a padded input whose border nobody writes stays padded with zeros."""
        buf = self._exact.get(role)
        if buf is None or buf.shape != tuple(shape) or buf.dtype != dtype:
            buf = self._aligned(math.prod(shape), np.dtype(dtype)).reshape(shape)
            buf.fill(0)
            self._exact[role] = buf
        return buf


@dataclasses.dataclass(frozen=True)
class BuildContext:
    """What building a layer needs besides its spec: the array module, dtype and generators."""

    xp: Any
    dtype: np.dtype
    init_rng: np.random.Generator
    dropout_rng: np.random.Generator

    def weights(self, shape: tuple, scale: float):
        """Normal(0, scale) weights drawn on the host (same numbers on every backend)."""
        return self.xp.asarray((self.init_rng.standard_normal(shape) * scale).astype(self.dtype))

    def full(self, size: int, value: float):
        return self.xp.full(size, value, dtype=self.dtype)


LAYERS: dict[str, type[LayerSpec]] = {}


class LayerSpec(Strict):
    """One layer of a spec. Shapes are per sample: ``(D,)`` or ``(C, H, W)``.

    ``output_shape`` raises ValueError when the input does not fit (the caller names the layer).
    """

    kind: ClassVar[str] = ""
    spatial: ClassVar[bool] = False  # needs (C, H, W) inputs, so the data stays image-shaped

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs):
        super().__pydantic_init_subclass__(**kwargs)
        cls.kind = literal_value(cls, "type")
        LAYERS[cls.kind] = cls

    def output_shape(self, shape: tuple) -> tuple:
        return shape

    def param_count(self, shape: tuple) -> int:
        """Trainable values for this input shape, computed without allocating them."""
        return 0

    def build(self, shape: tuple, ctx: BuildContext) -> Layer:
        raise NotImplementedError

    def normalised(self) -> dict:
        """The layer with every default filled in: the form a stored model keeps."""
        return self.model_dump()
