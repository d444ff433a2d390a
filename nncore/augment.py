"""On-the-fly augmentation of image batches: random shifts (pad and crop) and mirror flips.

Each training batch gets fresh random transforms, drawn from a generator of its own that is
seeded from the job's seed and saved in checkpoints, so a run with augmentation is as
reproducible and resumable as one without; with augmentation off nothing is drawn at all.
Draws happen on the host (NumPy), like Dropout's masks, so every backend sees the same
transforms. Labels are never touched: only label-preserving transforms belong here.

Shifts suit any centred 28x28 set (MNIST, Fashion-MNIST). Flips suit Fashion-MNIST, whose
clothes look alike mirrored, but not digits or the synthetic set's glyphs, which a mirror can
turn into another class.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from .rng import rng_from_arrays, rng_to_arrays
from .schema import Strict

MAX_SHIFT = 8               # pixels: a third of a 28-pixel image
FLIP_PROBABILITY = 0.5
# The augmentation generator's place among the streams drawn from a job's seed; the network
# takes children 0 (initial weights) and 1 (Dropout) of ``SeedSequence(seed)``.
AUGMENT_STREAM = 2


class AugmentSpec(Strict):
    """Off unless a field is set: ``shift`` 0 and ``flip`` false change nothing."""

    shift: int = Field(0, ge=0, le=MAX_SHIFT, description=(
        "move each image by up to this many pixels each way, zero fill: padding by `shift` "
        "and cropping 28x28 at a random offset"))
    flip: bool = Field(False, description="mirror each image left-right with probability 1/2")

    @property
    def enabled(self) -> bool:
        return self.shift > 0 or self.flip


class Augmenter:
    """Applies an ``AugmentSpec`` to batches of images (any per-sample shape whose size is
    ``image_shape``'s: flat rows are viewed as images and come back flat)."""

    def __init__(self, spec: AugmentSpec, seed: int, image_shape: tuple[int, int, int], xp=np):
        self.spec, self.image_shape, self.xp = spec, tuple(image_shape), xp
        stream = np.random.SeedSequence(seed, spawn_key=(AUGMENT_STREAM,))
        self.rng = np.random.Generator(np.random.PCG64(stream))

    def __call__(self, x):
        """A transformed copy of the batch ``x`` (N, *sample shape); ``x`` itself is kept."""
        if not self.spec.enabled:
            return x
        n = len(x)
        images = x.reshape(n, *self.image_shape)                        # (N, C, H, W)
        if self.spec.shift:
            images = self._shifted(images)
        if self.spec.flip:
            mirrored = self.xp.asarray(self.rng.random(n) < FLIP_PROBABILITY)
            images = self.xp.where(mirrored[:, None, None, None], images[..., ::-1], images)
        return images.reshape(x.shape)

    def _shifted(self, images):
        """Each image moved by its own (dy, dx) in [-shift, shift], vacated pixels zero."""
        xp, s = self.xp, self.spec.shift
        n, c, h, w = images.shape
        offsets = self.rng.integers(0, 2 * s + 1, size=(2, n))          # crop corner in the pad
        padded = xp.pad(images, ((0, 0), (0, 0), (s, s), (s, s)))      # (N, C, H+2s, W+2s)
        rows = xp.asarray(offsets[0])[:, None] + xp.arange(h)          # (N, H)
        cols = xp.asarray(offsets[1])[:, None] + xp.arange(w)          # (N, W)
        return padded[xp.arange(n)[:, None, None, None], xp.arange(c)[None, :, None, None],
                      rows[:, None, :, None], cols[:, None, None, :]]  # (N, C, H, W)

    def state(self) -> dict[str, np.ndarray]:
        """The generator's state, for checkpoints."""
        return rng_to_arrays(self.rng)

    def set_state(self, state: dict) -> None:
        self.rng = rng_from_arrays(state)

