"""Element-wise activations."""
from typing import Literal

from ..backend import array_module
from .base import Layer, LayerSpec


class ReLU(Layer):
    def forward(self, x, *, train):
        xp = array_module(x)
        if not train:
            return xp.maximum(x, 0)
        # a boolean mask: a quarter of the memory traffic of a float one, which in a convnet
        # (6.9 MB activations) outweighs numpy's slower mixed-type multiply in backward
        self._mask = xp.greater(x, 0, out=self.scratch(x).empty("mask", x.shape, bool))
        return xp.maximum(x, 0, out=self.result_array("output", x.shape, x, train=True))

    def backward(self, dout):
        dx = self.result_array("input_grad", dout.shape, dout, train=True)
        return array_module(dout).multiply(dout, self._mask, out=dx)


class Sigmoid(Layer):
    def __init__(self, xp):
        super().__init__()
        self.xp = xp

    def forward(self, x, *, train):
        # exp of -|x| never overflows; both branches give 1 / (1 + e^-x)
        e = self.xp.exp(-self.xp.abs(x))
        self._y = self.xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return self._y

    def backward(self, dout):
        return dout * self._y * (1 - self._y)


class Tanh(Layer):
    def __init__(self, xp):
        super().__init__()
        self.xp = xp

    def forward(self, x, *, train):
        self._y = self.xp.tanh(x)
        return self._y

    def backward(self, dout):
        return dout * (1 - self._y * self._y)


class ReLUSpec(LayerSpec):
    type: Literal["relu"]

    def build(self, shape, ctx):
        return ReLU()


class SigmoidSpec(LayerSpec):
    type: Literal["sigmoid"]

    def build(self, shape, ctx):
        return Sigmoid(ctx.xp)


class TanhSpec(LayerSpec):
    type: Literal["tanh"]

    def build(self, shape, ctx):
        return Tanh(ctx.xp)


ACTIVATIONS = ("relu", "sigmoid", "tanh")
