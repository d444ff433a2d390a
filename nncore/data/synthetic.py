"""A seeded, MNIST-shaped synthetic classification set for tests and demos.

Each class has a few prototype "glyphs" drawn as smooth random strokes; a sample
is one of its class's glyphs, shifted, rescaled in intensity, overlaid with a
faint glyph of another class and pixel noise, and a share of labels is flipped.
That keeps it learnable yet hard enough that a small MLP stays well below 100 %
after a few epochs, so hyperparameters visibly matter and trials differ.
"""

from __future__ import annotations

import numpy as np

SIDE = 28
NUM_CLASSES = 10
VARIANTS_PER_CLASS = 2
STROKES_PER_GLYPH = 3
POINTS_PER_STROKE = 24
STROKE_WIDTH = 1.6          # gaussian sigma in pixels
MAX_SHIFT = 1               # pixels, each direction
DISTRACTOR_WEIGHT = 0.3     # intensity of the overlaid other-class glyph
NOISE_STD = 0.15
LABEL_NOISE = 0.08          # share of labels replaced by a random class


def _glyphs(rng: np.random.Generator) -> np.ndarray:
    """(classes, variants, SIDE, SIDE) glyphs; each a sum of quadratic Bezier strokes."""
    n = NUM_CLASSES * VARIANTS_PER_CLASS * STROKES_PER_GLYPH
    ctrl = rng.uniform(6.0, SIDE - 7.0, size=(n, 3, 2))                 # (strokes, 3 points, yx)
    s = np.linspace(0.0, 1.0, POINTS_PER_STROKE)[:, None]                # (P, 1)
    pts = ((1 - s) ** 2 * ctrl[:, None, 0] + 2 * s * (1 - s) * ctrl[:, None, 1]
           + s ** 2 * ctrl[:, None, 2])                                  # (strokes, P, 2)
    grid = np.arange(SIDE, dtype=np.float64)
    gy = np.exp(-(grid - pts[..., 0:1]) ** 2 / (2 * STROKE_WIDTH ** 2))  # (strokes, P, SIDE)
    gx = np.exp(-(grid - pts[..., 1:2]) ** 2 / (2 * STROKE_WIDTH ** 2))
    img = np.einsum("spy,spx->syx", gy, gx)                              # (strokes, SIDE, SIDE)
    img = img.reshape(NUM_CLASSES, VARIANTS_PER_CLASS, STROKES_PER_GLYPH, SIDE, SIDE).sum(2)
    img /= img.max(axis=(2, 3), keepdims=True)
    return np.clip(img * 1.5, 0.0, 1.0)


def _shifted(glyphs: np.ndarray, cls, var, dy, dx) -> np.ndarray:
    """Gather glyphs[cls, var] moved by (dy, dx) pixels with zero fill: (N, SIDE, SIDE)."""
    pad = np.pad(glyphs, ((0, 0), (0, 0), (MAX_SHIFT, MAX_SHIFT), (MAX_SHIFT, MAX_SHIFT)))
    ar = np.arange(SIDE)
    rows = (MAX_SHIFT + dy)[:, None, None] + ar[None, :, None]
    cols = (MAX_SHIFT + dx)[:, None, None] + ar[None, None, :]
    return pad[cls[:, None, None], var[:, None, None], rows, cols]


def make_synthetic(samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``samples`` images (N, 28, 28) float32 in [0, 1] and int64 labels, from ``seed``."""
    rng = np.random.Generator(np.random.PCG64(seed))
    glyphs = _glyphs(rng)
    labels = rng.integers(0, NUM_CLASSES, samples)
    var = rng.integers(0, VARIANTS_PER_CLASS, samples)
    shift = rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, size=(2, samples))
    x = _shifted(glyphs, labels, var, shift[0], shift[1])
    x *= rng.uniform(0.6, 1.0, size=(samples, 1, 1))
    other = (labels + rng.integers(1, NUM_CLASSES, samples)) % NUM_CLASSES
    shift = rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, size=(2, samples))
    x += DISTRACTOR_WEIGHT * _shifted(glyphs, other, rng.integers(0, VARIANTS_PER_CLASS, samples),
                                      shift[0], shift[1])
    x += rng.normal(0.0, NOISE_STD, size=x.shape)
    np.clip(x, 0.0, 1.0, out=x)
    flip = rng.random(samples) < LABEL_NOISE
    labels = np.where(flip, rng.integers(0, NUM_CLASSES, samples), labels)
    return x.astype(np.float32), labels.astype(np.int64)
