"""Fully connected layer and flatten."""
from .base import Layer


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
        return x2 @ self.params["W"] + self.params["b"]  # (N, M)

    def backward(self, dout):
        W = self.params["W"]
        self.grads["W"] = self._x.T @ dout
        self.grads["b"] = dout.sum(axis=0)
        return (dout @ W.T).reshape(self._in_shape)


class Flatten(Layer):
    """(N, ...) -> (N, features)."""

    def forward(self, x, *, train):
        self._in_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        return dout.reshape(self._in_shape)
