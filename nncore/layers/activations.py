"""Element-wise activations."""
from typing import Literal

from .base import Layer, LayerSpec


class ReLU(Layer):
    def forward(self, x, *, train):
        self._mask = x > 0
        return x * self._mask

    def backward(self, dout):
        return dout * self._mask


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
