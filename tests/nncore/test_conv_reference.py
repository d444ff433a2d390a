"""Convolution and pooling against plain loops over every output position."""
import numpy as np
import pytest

from nncore import layers as L


def naive_conv(x, W, b, stride, pad):
    n, c, h, w = x.shape
    f, _, kh, kw = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    out = np.zeros((n, f, oh, ow))
    for i in range(n):
        for k in range(f):
            for y in range(oh):
                for z in range(ow):
                    patch = xp[i, :, y * stride:y * stride + kh, z * stride:z * stride + kw]
                    out[i, k, y, z] = (patch * W[k]).sum() + b[k]
    return out


def naive_pool(x, size, stride, pad):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf)
    oh, ow = (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1
    out = np.zeros((n, c, oh, ow))
    dx = np.zeros_like(xp)
    for i in range(n):
        for k in range(c):
            for y in range(oh):
                for z in range(ow):
                    win = xp[i, k, y * stride:y * stride + size, z * stride:z * stride + size]
                    out[i, k, y, z] = win.max()
                    a, bb = np.unravel_index(win.argmax(), win.shape)  # first maximum
                    dx[i, k, y * stride + a, z * stride + bb] += 1
    return out, dx[:, :, pad:pad + h, pad:pad + w]


@pytest.mark.parametrize("stride,pad,size", [(1, 0, 3), (1, 1, 3), (2, 1, 3), (1, 2, 5), (3, 0, 2)])
def test_conv_forward_matches_loops(stride, pad, size):
    rng = np.random.default_rng(stride * 10 + pad)
    h = size - 2 * pad + stride * 4  # a size the windows tile exactly
    x = rng.standard_normal((2, 3, h, h))
    W, b = rng.standard_normal((4, 3, size, size)), rng.standard_normal(4)
    out = L.Conv2D(W, b, stride=stride, pad=pad, xp=np).forward(x, train=True)
    np.testing.assert_allclose(out, naive_conv(x, W, b, stride, pad), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("size,stride,pad", [(2, 2, 0), (3, 1, 1), (3, 2, 1), (2, 1, 0)])
def test_maxpool_forward_and_backward_match_loops(size, stride, pad):
    rng = np.random.default_rng(size * 7 + stride)
    h = size - 2 * pad + stride * 4
    x = rng.integers(0, 4, (2, 3, h, h)).astype(np.float64)  # few values: many ties
    layer = L.MaxPool2D(size, stride, pad, np)
    expected, routing = naive_pool(x, size, stride, pad)
    np.testing.assert_array_equal(layer.forward(x, train=True), expected)
    np.testing.assert_array_equal(layer.backward(np.ones_like(expected)), routing)


def test_im2col_and_col2im_are_adjoint():
    """<im2col(x), c> == <x, col2im(c)> for any x and c."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 7))
    col = L.im2col(x, 3, 3, 2, 1, np)
    c = rng.standard_normal(col.shape)
    lhs = (col * c).sum()
    rhs = (x * L.col2im(c, x.shape, 3, 3, 2, 1, np)).sum()
    assert lhs == pytest.approx(rhs, rel=1e-12)
