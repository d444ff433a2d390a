"""Convolution and max pooling on (N, C, H, W) arrays, via im2col/col2im.

im2col lays patches out as columns, (C*kh*kw, N*OH*OW): every copy then moves whole rows of
the image (contiguous OW runs) instead of scattering kh*kw-element fragments, which is what
made the book's (N*OH*OW, C*kh*kw) layout several times slower on CPU.
"""
from typing import ClassVar, Literal

from pydantic import Field

from ..geometry import conv_output_size
from ..init import weight_scale
from ..schema import Init, KernelSize, Padding, Positive, Width
from .base import Layer, LayerSpec


def _channels_first(x, pad, xp):
    """(N, C, H, W) -> padded (C, N, H+2p, W+2p), contiguous."""
    xt = x.transpose(1, 0, 2, 3)
    if pad == 0:
        return xp.ascontiguousarray(xt)
    return xp.pad(xt, ((0, 0), (0, 0), (pad, pad), (pad, pad)))


def im2col(x, kh, kw, stride, pad, xp):
    """(N, C, H, W) -> (C*kh*kw, N*OH*OW): column q holds the patch of output position q."""
    n, c, h, w = x.shape
    oh, ow = conv_output_size(h, kh, stride, pad), conv_output_size(w, kw, stride, pad)
    xt = _channels_first(x, pad, xp)  # (C, N, Hp, Wp)
    sc, sn, sh, sw = xt.strides
    win = xp.lib.stride_tricks.as_strided(
        xt, shape=(c, kh, kw, n, oh, ow), strides=(sc, sh, sw, sn, sh * stride, sw * stride))
    return win.reshape(c * kh * kw, n * oh * ow)


def col2im(col, x_shape, kh, kw, stride, pad, xp):
    """The adjoint of im2col: sums each column back into the pixels it was read from."""
    n, c, h, w = x_shape
    oh, ow = conv_output_size(h, kh, stride, pad), conv_output_size(w, kw, stride, pad)
    col = col.reshape(c, kh, kw, n, oh, ow)
    img = xp.zeros((c, n, h + 2 * pad, w + 2 * pad), dtype=col.dtype)
    for i in range(kh):
        for j in range(kw):
            img[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride] += col[:, i, j]
    return xp.ascontiguousarray(img[:, :, pad:pad + h, pad:pad + w].transpose(1, 0, 2, 3))


class Conv2D(Layer):
    """Filters W (FN, C, kh, kw) and bias b (FN,)."""

    def __init__(self, W, b, *, stride, pad, xp):
        super().__init__()
        self.params = {"W": W, "b": b}
        self.stride, self.pad, self.xp = stride, pad, xp

    def forward(self, x, *, train):
        W = self.params["W"]
        fn, _, kh, kw = W.shape
        n, _, h, w = x.shape
        oh = conv_output_size(h, kh, self.stride, self.pad)
        ow = conv_output_size(w, kw, self.stride, self.pad)
        col = im2col(x, kh, kw, self.stride, self.pad, self.xp)  # (C*kh*kw, N*OH*OW)
        out = W.reshape(fn, -1) @ col  # (FN, N*OH*OW)
        out += self.params["b"][:, None]
        self._x_shape, self._col = x.shape, col
        return self.xp.ascontiguousarray(out.reshape(fn, n, oh, ow).transpose(1, 0, 2, 3))

    def backward(self, dout):
        W = self.params["W"]
        fn, _, kh, kw = W.shape
        d = dout.transpose(1, 0, 2, 3).reshape(fn, -1)  # (FN, N*OH*OW)
        self.grads["b"] = d.sum(axis=1)
        self.grads["W"] = (d @ self._col.T).reshape(W.shape)
        dcol = W.reshape(fn, -1).T @ d  # (C*kh*kw, N*OH*OW)
        return col2im(dcol, self._x_shape, kh, kw, self.stride, self.pad, self.xp)


class MaxPool2D(Layer):
    """Max over each window; the gradient goes to the first maximum in the window, as PyTorch."""

    def __init__(self, size, stride, pad, xp):
        super().__init__()
        self.size, self.stride, self.pad, self.xp = size, stride, pad, xp

    def _offsets(self, xpad, oh, ow):
        """The strided (N, C, OH, OW) view of window offset (i, j), for every offset in order."""
        k, s = self.size, self.stride
        for i in range(k):
            for j in range(k):
                yield i * k + j, xpad[:, :, i:i + s * oh:s, j:j + s * ow:s]

    def forward(self, x, *, train):
        xp, k, s, pad = self.xp, self.size, self.stride, self.pad
        n, c, h, w = x.shape
        oh, ow = conv_output_size(h, k, s, pad), conv_output_size(w, k, s, pad)
        xpad = x if pad == 0 else xp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)),
                                         constant_values=-xp.inf)
        views = self._offsets(xpad, oh, ow)
        out = next(views)[1].copy()  # (N, C, OH, OW)
        for _, view in views:
            xp.maximum(out, view, out=out)
        self._cache = (xpad, out, x.shape)
        return out

    def backward(self, dout):
        """Routes dout to the first position of each window that holds the maximum."""
        xp, pad = self.xp, self.pad
        xpad, out, x_shape = self._cache
        n, c, h, w = x_shape
        oh, ow = out.shape[2:]
        dx = xp.zeros(xpad.shape, dtype=dout.dtype)
        unclaimed = xp.ones(out.shape, dtype=bool)
        for (_, src), (_, dst) in zip(self._offsets(xpad, oh, ow), self._offsets(dx, oh, ow)):
            hit = src == out
            hit &= unclaimed
            unclaimed ^= hit
            if self.stride >= self.size:  # windows do not overlap: each pixel is written once
                xp.multiply(dout, hit, out=dst)
            else:
                dst += dout * hit
        return dx if pad == 0 else xp.ascontiguousarray(dx[:, :, pad:pad + h, pad:pad + w])


def _window_output(shape: tuple, size: int, stride: int, pad: int) -> tuple[int, int, int]:
    """(C, OH, OW) of a size x size window sliding over a (C, H, W) input."""
    if len(shape) != 3:
        raise ValueError(f"needs (C, H, W) input, got {shape}")
    c, h, w = shape
    return c, conv_output_size(h, size, stride, pad), conv_output_size(w, size, stride, pad)


class ConvSpec(LayerSpec):
    """``filters`` size x size filters; W (filters, C, size, size), b (filters,)."""

    spatial: ClassVar[bool] = True

    type: Literal["conv"]
    filters: Width
    size: KernelSize
    stride: KernelSize = 1
    pad: Padding = 0
    init: Init = "he"
    init_std: Positive = 0.01

    def output_shape(self, shape):
        _, oh, ow = _window_output(shape, self.size, self.stride, self.pad)
        return (self.filters, oh, ow)

    def param_count(self, shape):
        return self.filters * (shape[0] * self.size * self.size + 1)

    def build(self, shape, ctx):
        fan_in = shape[0] * self.size * self.size
        W = ctx.weights((self.filters, shape[0], self.size, self.size),
                        weight_scale(self.init, fan_in, self.init_std))
        return Conv2D(W, ctx.full(self.filters, 0), stride=self.stride, pad=self.pad, xp=ctx.xp)


class MaxPoolSpec(LayerSpec):
    """A size x size max window; ``stride`` defaults to ``size`` (windows side by side)."""

    spatial: ClassVar[bool] = True

    type: Literal["maxpool"]
    size: KernelSize = 2
    stride: KernelSize | None = Field(None, description="defaults to size")
    pad: Padding = 0

    @property
    def step(self) -> int:
        return self.size if self.stride is None else self.stride

    def output_shape(self, shape):
        return _window_output(shape, self.size, self.step, self.pad)

    def build(self, shape, ctx):
        return MaxPool2D(self.size, self.step, self.pad, ctx.xp)

    def normalised(self):
        return {**super().normalised(), "stride": self.step}
