"""Inverted dropout: scaled at train time so evaluation is the identity."""
from typing import Literal

import numpy as np

from ..schema import Rate
from .base import Layer, LayerSpec


class Dropout(Layer):
    def __init__(self, rate: float, rng: np.random.Generator, xp, dtype):
        super().__init__()
        self.rate = rate
        self.rng = rng  # host generator, so masks are the same on every backend
        self.xp = xp
        self.dtype = dtype

    def forward(self, x, *, train):
        if not train or self.rate == 0:
            self._mask = None
            return x
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.rate
        mask = keep.astype(self.dtype) * self.dtype.type(1 / (1 - self.rate))
        self._mask = self.xp.asarray(mask)
        return x * self._mask

    def backward(self, dout):
        return dout if self._mask is None else dout * self._mask


class DropoutSpec(LayerSpec):
    """``rate``: the fraction of units dropped in training."""

    type: Literal["dropout"]
    rate: Rate = 0.5

    def build(self, shape, ctx):
        return Dropout(self.rate, ctx.dropout_rng, ctx.xp, ctx.dtype)
