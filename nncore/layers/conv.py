"""Convolution and max pooling on (N, C, H, W) arrays, via im2col.

im2col lays patches out as columns, (C*kh*kw, N*OH*OW), copied from a strided window view of
the padded channels-first input, with a row of ones below them so that one GEMM of the
filters (bias as a last column) with the columns gives the output, and one GEMM of the
columns with the output gradient gives both dW and db. The input gradient of a stride-1
convolution is the same correlation, of the padded output gradient with the flipped filters;
other strides multiply back to columns and scatter them (col2im, kh*kw slice-adds).

What makes that fast on a CPU:
- numpy pays per contiguous run it copies, so with stride 1 the columns of an output row span
  the padded width Wp, not OW: each (channel, offset, sample) is one run of OH*Wp values
  instead of OH runs of OW. The Wp - OW extra columns are computed and dropped.
- the batch goes through a block of samples at a time (``backend.col_block_bytes``), so a
  block's columns are still in cache when the GEMM reads them; backward rebuilds them from
  the kept padded input instead of keeping the whole batch's (45 MB for deep_convnet's second
  layer, which the allocator would map and fault in afresh every step).
- padded inputs, column blocks and results live in memory reused across steps (``Scratch``).
A GPU takes the whole batch as one block.
"""
import itertools
from typing import ClassVar, Literal, NamedTuple

from pydantic import Field

from ..backend import col_block_bytes
from ..geometry import conv_output_size
from ..init import weight_scale
from ..schema import Init, KernelSize, Padding, Positive, Width
from .base import Layer, LayerSpec, Scratch

# GEMM dimensions that are not a multiple of this leave OpenBLAS's kernels partly idle and its
# threads unbalanced: simple_convnet's 30 filters padded with zero rows to 32 made its dW GEMM
# 28 % faster with two threads (10 % with one), its forward GEMM 9 % (none).
FILTER_MULTIPLE = 16


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


class Geometry(NamedTuple):
    """One convolution's sizes. ``row``: columns per output row, OW or (stride 1) Wp."""

    c: int
    h: int
    w: int
    kh: int
    kw: int
    stride: int
    pad: int
    oh: int
    ow: int
    row: int

    @classmethod
    def of(cls, x_shape, kh, kw, stride, pad, *, padded_rows: bool) -> "Geometry":
        _, c, h, w = x_shape
        oh, ow = conv_output_size(h, kh, stride, pad), conv_output_size(w, kw, stride, pad)
        row = w + 2 * pad if padded_rows and stride == 1 else ow
        return cls(c, h, w, kh, kw, stride, pad, oh, ow, row)

    @property
    def padded(self) -> tuple[int, int]:
        return self.h + 2 * self.pad, self.w + 2 * self.pad

    @property
    def rows(self) -> int:
        """im2col rows: C*kh*kw."""
        return self.c * self.kh * self.kw

    def flat_size(self, n: int) -> int:
        """Values in a flat buffer for n padded channels-first samples: C*n*Hp*Wp, plus the
        kw - 1 values a padded-row window reads past the last sample."""
        hp, wp = self.padded
        return self.c * n * hp * wp + self.kw - 1

    def channels_first(self, flat, n: int):
        """The (C, n, Hp, Wp) view at the start of a flat buffer of ``flat_size(n)``."""
        hp, wp = self.padded
        return flat[:self.c * n * hp * wp].reshape(self.c, n, hp, wp)

    def windows(self, xt, xp):
        """The (C, kh, kw, n, OH, row) view of every window of a padded channels-first xt."""
        c, n = xt.shape[:2]
        sc, sn, sh, sw = xt.strides
        s = self.stride
        return xp.lib.stride_tricks.as_strided(
            xt, shape=(c, self.kh, self.kw, n, self.oh, self.row),
            strides=(sc, sh, sw, sn, sh * s, sw * s))

    def add_windows(self, dcol, dxt, xp):
        """col2im's core, one slice-add per window offset (i, j):
        dxt[c, n, i + s*y, j + s*x] += dcol[c, i, j, n, y, x]."""
        c, n = dxt.shape[:2]
        sc, sn, sh, sw = dxt.strides
        s = self.stride
        for i in range(self.kh):
            for j in range(self.kw):
                target = xp.lib.stride_tricks.as_strided(
                    dxt[:, :, i:, j:], shape=(c, n, self.oh, self.row),
                    strides=(sc, sn, sh * s, sw * s))
                target += dcol[:, i, j]


def _pad_channels_first(x, pad, out):
    """Write (N, C, H, W) x into the interior of out, (C, N, H+2p, W+2p) with a zero border."""
    _, _, h, w = x.shape
    out[:, :, pad:pad + h, pad:pad + w] = x.transpose(1, 0, 2, 3)
    return out


def sample_blocks(n: int, bytes_per_sample: int, budget: int | None) -> list[tuple[int, int]]:
    """Consecutive (start, stop) ranges covering n samples, as even as possible, each within
    ``budget`` bytes (but at least one sample); a single range when budget is None."""
    count = 1 if budget is None else -(-n * bytes_per_sample // budget)
    count = min(max(count, 1), n)
    bounds = [n * i // count for i in range(count + 1)]
    return list(itertools.pairwise(bounds))


def im2col(x, kh, kw, stride, pad, xp):
    """(N, C, H, W) -> (C*kh*kw, N*OH*OW): column q holds the patch of output position q."""
    g = Geometry.of(x.shape, kh, kw, stride, pad, padded_rows=False)
    n = x.shape[0]
    xt = _pad_channels_first(x, pad, g.channels_first(xp.zeros(g.flat_size(n), x.dtype), n))
    return g.windows(xt, xp).reshape(g.rows, n * g.oh * g.ow)


def col2im(col, x_shape, kh, kw, stride, pad, xp):
    """The adjoint of im2col: sums each column back into the pixels it was read from."""
    g = Geometry.of(x_shape, kh, kw, stride, pad, padded_rows=False)
    n, (h, w) = x_shape[0], x_shape[2:]
    dxt = g.channels_first(xp.zeros(g.flat_size(n), col.dtype), n)
    g.add_windows(col.reshape(g.c, kh, kw, n, g.oh, g.ow), dxt, xp)
    return xp.ascontiguousarray(dxt[:, :, pad:pad + h, pad:pad + w].transpose(1, 0, 2, 3))


class Conv2D(Layer):
    """Filters W (FN, C, kh, kw) and bias b (FN,)."""

    def __init__(self, W, b, *, stride, pad, xp):
        super().__init__()
        self.params = {"W": W, "b": b}
        self.stride, self.pad, self.xp = stride, pad, xp
        self._scratch = Scratch(xp)
        self._block_bytes = col_block_bytes(xp)

    def _geometry(self, x_shape) -> Geometry:
        _, _, kh, kw = self.params["W"].shape
        return Geometry.of(x_shape, kh, kw, self.stride, self.pad, padded_rows=True)

    def _blocks(self, n, g: Geometry, dtype):
        return sample_blocks(n, g.rows * g.oh * g.row * dtype.itemsize, self._block_bytes)

    def _im2col(self, xt, g: Geometry, *, ones: bool):
        """The columns (C*kh*kw, n*OH*row) of a block of the padded input, in reused memory;
        with ``ones`` a row of ones below them, which carries the bias through the GEMM."""
        n = xt.shape[1]
        width = n * g.oh * g.row
        col = self._scratch.empty("col", (g.rows + ones, width), xt.dtype)
        col[:g.rows].reshape(g.c, g.kh, g.kw, n, g.oh, g.row)[...] = g.windows(xt, self.xp)
        if ones:
            col[g.rows] = 1
        return col

    def _correlate(self, x, filters, g: Geometry, out, *, biased: bool, keep: str | None = None):
        """out (N, F, OH, OW) = every window of x (N, C, H, W) times ``filters`` (F, C*kh*kw,
        plus the bias as a last column when ``biased``).

        With ``keep`` the padded input stays in that scratch role and is returned (backward
        rebuilds its columns from it); otherwise it is a new array.
        """
        xp, n, dtype = self.xp, x.shape[0], x.dtype
        size = (g.flat_size(n),)
        flat = self._scratch.zeroed_once(f"{keep}{n}", size, dtype) if keep else xp.zeros(size, dtype)
        xt = _pad_channels_first(x, g.pad, g.channels_first(flat, n))
        f = filters.shape[0]
        rows = _round_up(f, FILTER_MULTIPLE)
        if rows != f:
            filters = xp.concatenate([filters, xp.zeros((rows - f, filters.shape[1]), dtype)])
        for lo, hi in self._blocks(n, g, dtype):
            col = self._im2col(xt[:, lo:hi], g, ones=biased)
            y = xp.matmul(filters, col, out=self._scratch.empty("out", (rows, col.shape[1]), dtype))
            out[lo:hi] = y[:f].reshape(f, hi - lo, g.oh, g.row)[..., :g.ow].transpose(1, 0, 2, 3)
        return xt

    def forward(self, x, *, train):
        W, b = self.params["W"], self.params["b"]
        g = self._geometry(x.shape)
        filters = self.xp.concatenate([W.reshape(W.shape[0], -1), b[:, None]], axis=1)
        out = self.result_array("output", (x.shape[0], W.shape[0], g.oh, g.ow), x, train=train)
        xt = self._correlate(x, filters, g, out, biased=True, keep="input" if train else None)
        if train:
            self._cache = (xt, x.shape, g)
        return out

    def backward(self, dout):
        xp, dtype = self.xp, dout.dtype
        W = self.params["W"]
        fn, c, kh, kw = W.shape
        xt, x_shape, g = self._cache
        n = x_shape[0]
        # (dW | db) transposed, from the columns with their row of ones; dout's rows padded
        # with zeros to a multiple of FILTER_MULTIPLE
        rows = _round_up(fn, FILTER_MULTIPLE)
        grads = self._scratch.empty("grads", (g.rows + 1, rows), dtype)
        # dx is a stride-1 correlation of dout (padded by k-1-pad) with the flipped filters,
        # the forward code path; other geometries scatter the columns back (col2im)
        full = self.needs_input_grad and self.stride == 1 and kh == kw and self.pad < kh
        scatter = self.needs_input_grad and not full
        dx = self.result_array("input_grad", x_shape, dout, train=True) if scatter else None
        for index, (lo, hi) in enumerate(self._blocks(n, g, dtype)):
            # dout of the block as (rows, block*OH*row); dropped columns and extra rows stay 0
            d = self._scratch.zeroed_once(f"dout{hi - lo}", (rows, hi - lo, g.oh, g.row), dtype)
            d[:fn, ..., :g.ow] = dout[lo:hi].transpose(1, 0, 2, 3)
            d = d.reshape(rows, -1)
            col = self._im2col(xt[:, lo:hi], g, ones=True)
            # transposed: OpenBLAS runs col @ d.T nearly twice as fast as d @ col.T
            if index == 0:
                xp.matmul(col, d.T, out=grads)
            else:  # blocks are summed in a fixed order: the same bits every run
                grads += xp.matmul(col, d.T, out=self._scratch.empty("block_grads", grads.shape, dtype))
            if scatter:
                self._scatter_block(d[:fn], W.reshape(fn, -1), g, dx, lo, hi)
        self.grad_buffer("W", W).reshape(fn, -1)[...] = grads[:g.rows, :fn].T
        self.grad_buffer("b", self.params["b"])[...] = grads[g.rows, :fn]
        if full:
            flipped = W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).reshape(c, -1)
            transposed = Geometry.of(dout.shape, kh, kw, 1, kh - 1 - self.pad, padded_rows=True)
            dx = self.result_array("input_grad", x_shape, dout, train=True)
            self._correlate(dout, flipped, transposed, dx, biased=False, keep="dout_padded")
        return dx

    def _scatter_block(self, d, filters, g: Geometry, dx, lo, hi):
        """col2im of one block: dx[lo:hi] from dout's block d (FN, block*OH*row)."""
        pad, dtype = self.pad, d.dtype
        h, w = dx.shape[2:]
        dcol = self.xp.matmul(filters.T, d, out=self._scratch.empty("dcol", (g.rows, d.shape[1]), dtype))
        flat = self._scratch.empty("dinput", (g.flat_size(hi - lo),), dtype)
        flat.fill(0)
        dxt = g.channels_first(flat, hi - lo)
        g.add_windows(dcol.reshape(g.c, g.kh, g.kw, hi - lo, g.oh, g.row), dxt, self.xp)
        dx[lo:hi] = dxt[:, :, pad:pad + h, pad:pad + w].transpose(1, 0, 2, 3)


def _route_to_first_max(candidates, best, dout, targets, xp, *, accumulate=False):
    """targets[i] = dout where candidates[i] is the first candidate equal to best, else 0
    (with ``accumulate``, added instead of written: overlapping windows share pixels)."""
    taken = None
    for candidate, target in zip(candidates, targets):
        hit = candidate == best
        if taken is None:
            taken = hit
        else:
            hit &= ~taken
            taken |= hit
        if accumulate:
            target += dout * hit
        else:
            xp.multiply(dout, hit, out=target)


class MaxPool2D(Layer):
    """Max over each window; the gradient goes to the first maximum in the window, as PyTorch.

    Training copies the k*k window offsets into one (k*k, N, C, OH, OW) array: the max and the
    backward comparisons then read contiguous memory instead of stride-k views with short
    rows, which numpy runs several times slower (splitting a tiling 2x2 pool into a column
    step and a row step measured slower still: its views have runs of OW values).
    """

    def __init__(self, size, stride, pad, xp):
        super().__init__()
        self.size, self.stride, self.pad, self.xp = size, stride, pad, xp
        self._scratch = Scratch(xp)

    @property
    def tiles(self) -> bool:
        """Whether every input pixel lies in exactly one window."""
        return self.stride == self.size and self.pad == 0

    def _offsets(self, xpad, oh, ow):
        """The strided (N, C, OH, OW) view of each window offset (i, j), in row-major order."""
        k, s = self.size, self.stride
        return [xpad[:, :, i:i + s * oh:s, j:j + s * ow:s] for i in range(k) for j in range(k)]

    def _padded(self, x):
        pad = self.pad
        if pad == 0:
            return x
        return self.xp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-self.xp.inf)

    def _max_of(self, views, out):
        out[...] = views[0]
        for view in views[1:]:
            self.xp.maximum(out, view, out=out)
        return out

    def forward(self, x, *, train):
        k, s, pad = self.size, self.stride, self.pad
        n, c, h, w = x.shape
        oh, ow = conv_output_size(h, k, s, pad), conv_output_size(w, k, s, pad)
        out = self.result_array("output", (n, c, oh, ow), x, train=train)
        views = self._offsets(self._padded(x), oh, ow)
        if not train:
            return self._max_of(views, out)
        stacked = self._scratch.empty("windows", (k * k, n, c, oh, ow), x.dtype)
        for target, view in zip(stacked, views):
            target[...] = view
        stacked.max(axis=0, out=out)
        self._cache = (stacked, out, x.shape)
        return out

    def backward(self, dout):
        """Routes dout to the first position of each window that holds the maximum."""
        xp, k, s, pad = self.xp, self.size, self.stride, self.pad
        stacked, out, (n, c, h, w) = self._cache
        oh, ow = out.shape[2:]
        dx = self.result_array("input_grad", (n, c, h + 2 * pad, w + 2 * pad), dout, train=True)
        if not self.tiles:  # pixels outside every window, or in several, start from zero
            dx.fill(0)
        _route_to_first_max(stacked, out, dout, self._offsets(dx, oh, ow), xp,
                            accumulate=s < k)
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
