"""Fully connected layer and flatten."""
import math
from typing import Literal

from ..backend import array_module
from ..init import weight_scale
from ..schema import Init, Positive, Width
from .base import Layer, LayerSpec


class Affine(Layer):
    """``x @ W + b``; any input is flattened to (N, features) first."""

    def __init__(self, W, b):
        super().__init__()
        self.params = {"W": W, "b": b}
        self._x = None
        self._in_shape = None

    def forward(self, x, *, train):
        self._in_shape = x.shape
        x2 = x.reshape(x.shape[0], -1)  # (N, D)
        self._x = x2
        out = x2 @ self.params["W"]  # (N, M)
        out += self.params["b"]
        return out

    def backward(self, dout):
        W, b = self.params["W"], self.params["b"]
        array_module(dout).matmul(self._x.T, dout, out=self.grad_buffer("W", W))
        dout.sum(axis=0, out=self.grad_buffer("b", b))
        if not self.needs_input_grad:
            return None
        return (dout @ W.T).reshape(self._in_shape)


class AffineSpec(LayerSpec):
    """``units`` outputs from any input (flattened); W (fan_in, units), b (units,)."""

    type: Literal["affine"]
    units: Width
    init: Init = "he"
    init_std: Positive = 0.01

    def output_shape(self, shape):
        return (self.units,)

    def param_count(self, shape):
        return (math.prod(shape) + 1) * self.units

    def build(self, shape, ctx):
        fan_in = math.prod(shape)
        W = ctx.weights((fan_in, self.units), weight_scale(self.init, fan_in, self.init_std))
        return Affine(W, ctx.full(self.units, 0))


class Flatten(Layer):
    """(N, ...) -> (N, features)."""

    def forward(self, x, *, train):
        self._in_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self._in_shape)


class FlattenSpec(LayerSpec):
    type: Literal["flatten"]

    def output_shape(self, shape):
        return (math.prod(shape),)

    def build(self, shape, ctx):
        return Flatten()
