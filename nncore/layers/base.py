"""The layer protocol every nncore layer follows, and the registry of layer types.

A layer type is declared once, as a ``LayerSpec`` subclass next to its layer: its fields,
defaults and bounds (pydantic), its output shape, its parameter count and how it is built.
Declaring the subclass registers it in ``LAYERS``; validation, expansion, parameter counts,
``build`` and the service's schema are all derived from that registry.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from ..schema import Strict, literal_value


class Layer:
    """``forward(x, *, train)`` caches what ``backward(dout) -> dx`` needs.

    ``params`` and ``grads`` share keys; ``buffers`` hold non-trainable state (BatchNorm's running
    statistics) that is saved with the model. Every layer takes ``train``, so no caller ever asks a
    layer what it is. ``backward`` never writes into ``dout``.
    """

    def __init__(self):
        self.params: dict = {}
        self.grads: dict = {}
        self.buffers: dict = {}

    def forward(self, x, *, train: bool):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError


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
