"""Convolution and max pooling on (N, C, H, W) arrays, via im2col/col2im."""
from ..geometry import conv_output_size
from .base import Layer


def _pad(x, pad, xp):
    if pad == 0:
        return x
    return xp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))


def _windows(x, kh, kw, stride, xp):
    """A strided view (N, C, OH, OW, kh, kw) of every window of an already padded x."""
    n, c, h, w = x.shape
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    sn, sc, sh, sw = x.strides
    return xp.lib.stride_tricks.as_strided(
        x, shape=(n, c, oh, ow, kh, kw), strides=(sn, sc, sh * stride, sw * stride, sh, sw)
    )


def im2col(x, kh, kw, stride, pad, xp):
    """(N, C, H, W) -> (N*OH*OW, C*kh*kw), one row per output position."""
    win = _windows(_pad(x, pad, xp), kh, kw, stride, xp)  # (N, C, OH, OW, kh, kw)
    n, c, oh, ow = win.shape[:4]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)


def col2im(col, x_shape, kh, kw, stride, pad, xp):
    """The adjoint of im2col: sums each row back into the positions it was read from."""
    n, c, h, w = x_shape
    oh = conv_output_size(h, kh, stride, pad)
    ow = conv_output_size(w, kw, stride, pad)
    col = col.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)  # (N, C, kh, kw, OH, OW)
    img = xp.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=col.dtype)
    for i in range(kh):
        i_end = i + stride * oh
        for j in range(kw):
            img[:, :, i:i_end:stride, j:j + stride * ow:stride] += col[:, :, i, j]
    return img[:, :, pad:pad + h, pad:pad + w]


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
        col = im2col(x, kh, kw, self.stride, self.pad, self.xp)  # (N*OH*OW, C*kh*kw)
        out = col @ W.reshape(fn, -1).T + self.params["b"]  # (N*OH*OW, FN)
        self._x_shape, self._col = x.shape, col
        return out.reshape(n, oh, ow, fn).transpose(0, 3, 1, 2)  # (N, FN, OH, OW)

    def backward(self, dout):
        W = self.params["W"]
        fn, _, kh, kw = W.shape
        d = dout.transpose(0, 2, 3, 1).reshape(-1, fn)  # (N*OH*OW, FN)
        self.grads["b"] = d.sum(axis=0)
        self.grads["W"] = (d.T @ self._col).reshape(W.shape)
        dcol = d @ W.reshape(fn, -1)
        return col2im(dcol, self._x_shape, kh, kw, self.stride, self.pad, self.xp)


class MaxPool2D(Layer):
    """Max over each window; the gradient goes to the first maximum, as in PyTorch."""

    def __init__(self, size, stride, pad, xp):
        super().__init__()
        self.size, self.stride, self.pad, self.xp = size, stride, pad, xp

    def forward(self, x, *, train):
        xp, k, s = self.xp, self.size, self.stride
        n, c, h, w = x.shape
        oh = conv_output_size(h, k, s, self.pad)
        ow = conv_output_size(w, k, s, self.pad)
        xpad = x if self.pad == 0 else xp.pad(
            x, ((0, 0), (0, 0), (self.pad,) * 2, (self.pad,) * 2), constant_values=-xp.inf)
        if s == k and self.pad == 0:
            # non-overlapping windows: a reshape instead of a strided gather
            win = x[:, :, :oh * k, :ow * k].reshape(n, c, oh, k, ow, k).transpose(0, 1, 2, 4, 3, 5)
        else:
            win = _windows(xpad, k, k, s, xp)
        win = win.reshape(n, c, oh, ow, k * k)
        arg = win.argmax(axis=4)  # (N, C, OH, OW)
        self._cache = (x.shape, arg, oh, ow)
        return xp.take_along_axis(win, arg[..., None], axis=4)[..., 0]

    def backward(self, dout):
        xp, k, s, pad = self.xp, self.size, self.stride, self.pad
        x_shape, arg, oh, ow = self._cache
        n, c, h, w = x_shape
        dx = xp.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=dout.dtype)
        for i in range(k):
            for j in range(k):
                dx[:, :, i:i + s * oh:s, j:j + s * ow:s] += dout * (arg == i * k + j)
        return dx[:, :, pad:pad + h, pad:pad + w]
