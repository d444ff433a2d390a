"""Batch normalisation, per feature after Affine and per channel after Conv (as PyTorch).

Running statistics follow PyTorch, not the book: ``running = (1 - momentum) * running +
momentum * batch`` with momentum 0.1, ``running_var`` starts at 1 and is updated with the
unbiased batch variance; normalisation in training uses the biased one.
"""
from typing import Literal

from pydantic import Field

from ..backend import array_module
from ..schema import Positive
from .base import Layer, LayerSpec


class BatchNorm(Layer):
    def __init__(self, gamma, beta, running_mean, running_var, *, momentum=0.1, eps=1e-5):
        super().__init__()
        self.params = {"gamma": gamma, "beta": beta}
        self.buffers = {"running_mean": running_mean, "running_var": running_var}
        self.momentum = momentum
        self.eps = eps

    def _axes(self, x):
        return (0,) if x.ndim == 2 else (0, 2, 3)

    def _shaped(self, v, x):
        """A per-feature vector shaped to broadcast against x: (D,) or (1, C, 1, 1)."""
        return v if x.ndim == 2 else v.reshape(1, -1, 1, 1)

    def forward(self, x, *, train):
        gamma = self._shaped(self.params["gamma"], x)
        beta = self._shaped(self.params["beta"], x)
        if not train:
            mean = self._shaped(self.buffers["running_mean"], x)
            var = self._shaped(self.buffers["running_var"], x)
            y = x - mean
            y *= gamma / (var + self.eps) ** 0.5
            y += beta
            return y
        xp = array_module(x)
        axes = self._axes(x)
        count = x.size // x.shape[1]
        # sum then divide is what mean() does, without its Python overhead on small arrays
        mean = x.sum(axis=axes, keepdims=True)
        mean /= count
        xc = xp.subtract(x, mean, out=self.scratch(x).empty("centred", x.shape, x.dtype))
        y = xp.multiply(xc, xc, out=self.result_array("output", x.shape, x, train=True))
        var = y.sum(axis=axes, keepdims=True)  # y holds the squares until the output overwrites them
        var /= count
        inv_std = 1 / (var + self.eps) ** 0.5
        scale = gamma * inv_std  # xhat * gamma == xc * scale, one pass instead of two
        xp.multiply(xc, scale, out=y)
        y += beta
        self._cache = (xc, inv_std, scale, axes, count)
        m = self.momentum
        rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
        rm *= 1 - m
        rm += m * mean.reshape(rm.shape)
        rv *= 1 - m
        rv += (m * count / max(count - 1, 1)) * var.reshape(rv.shape)
        return y

    def backward(self, dout):
        xc, inv_std, scale, axes, count = self._cache
        gamma, beta = self.params["gamma"], self.params["beta"]
        xp = array_module(dout)
        dbeta = dout.sum(axis=axes, keepdims=True)
        product = xp.multiply(dout, xc, out=self.scratch(dout).empty("product", xc.shape, xc.dtype))
        dgamma = product.sum(axis=axes, keepdims=True)
        dgamma *= inv_std  # sum(dout * xhat) with xhat = xc * inv_std
        self.grad_buffer("gamma", gamma)[...] = dgamma.reshape(gamma.shape)
        self.grad_buffer("beta", beta)[...] = dbeta.reshape(beta.shape)
        if not self.needs_input_grad:
            return None
        # d/dx of (x - mean) / std with both depending on the batch:
        # scale * (dout - dbeta / count - xhat * dgamma / count), per-channel factors folded
        shift = xp.multiply(xc, scale * inv_std * dgamma / count, out=product)
        shift += scale * dbeta / count
        dx = xp.multiply(dout, scale, out=self.result_array("input_grad", dout.shape, dout, train=True))
        dx -= shift
        return dx


class BatchNormSpec(LayerSpec):
    """Per feature after an affine, per channel after a conv."""

    type: Literal["batchnorm"]
    momentum: float = Field(0.1, gt=0.0, le=1.0,
                            description="weight of the newest batch statistics")
    eps: Positive = 1e-5

    def output_shape(self, shape):
        if len(shape) not in (1, 3):
            raise ValueError(f"needs (D,) or (C, H, W) input, got {shape}")
        return shape

    def param_count(self, shape):
        return 2 * shape[0]

    def build(self, shape, ctx):
        d = shape[0]
        return BatchNorm(ctx.full(d, 1), ctx.full(d, 0), ctx.full(d, 0), ctx.full(d, 1),
                         momentum=self.momentum, eps=self.eps)
