"""Augmentation: shapes kept, the same transforms from the same seed, nothing when off,
labels untouched, and each transform what its name says."""

import numpy as np
import pytest

from nncore import SpecError, TrainingRun, parse_spec
from nncore.augment import Augmenter, AugmentSpec
from nncore.data.datasets import IMAGE_SHAPE


def images(n=16, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *IMAGE_SHAPE), dtype=np.float32)


def augmenter(seed=0, **fields) -> Augmenter:
    return Augmenter(AugmentSpec(**fields), seed, IMAGE_SHAPE)


@pytest.mark.parametrize("shape", [(16, *IMAGE_SHAPE), (16, 784)])
def test_shapes_and_dtype_are_kept_for_images_and_flat_rows(shape):
    x = images().reshape(shape)
    out = augmenter(shift=2, flip=True)(x)
    assert out.shape == x.shape and out.dtype == x.dtype


def test_the_same_seed_gives_the_same_transforms_and_another_seed_others():
    x = images()
    a, b, c = augmenter(3, shift=2, flip=True), augmenter(3, shift=2, flip=True), \
        augmenter(4, shift=2, flip=True)
    first, second = a(x), a(x)
    np.testing.assert_array_equal(first, b(x))
    np.testing.assert_array_equal(second, b(x))
    assert not np.array_equal(first, second)          # fresh draws for every batch
    assert not np.array_equal(first, c(x))


def test_off_is_the_identity_and_draws_nothing():
    x = images()
    off = augmenter()
    before = off.state()
    assert off(x) is x
    assert all(np.array_equal(before[k], v) for k, v in off.state().items())
    assert not AugmentSpec().enabled and AugmentSpec(shift=1).enabled


def test_a_shift_moves_each_image_within_the_bound_and_fills_zeros():
    x = np.zeros((50, *IMAGE_SHAPE), np.float32)
    x[:, 0, 14, 14] = 1.0                               # one lit pixel in the middle
    out = augmenter(shift=3)(x)
    lit = out[:, 0].reshape(50, -1).argmax(axis=1)
    rows, cols = lit // 28, lit % 28
    assert out.sum(axis=(1, 2, 3)).tolist() == [1.0] * 50   # moved, never lost or doubled
    assert np.abs(rows - 14).max() <= 3 and np.abs(cols - 14).max() <= 3
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 10  # many different offsets

    edge = np.ones((50, *IMAGE_SHAPE), np.float32)
    moved = augmenter(shift=3)(edge)
    assert moved.min() == 0.0 and moved.max() == 1.0          # vacated border is zero


def test_a_flip_mirrors_about_half_of_the_images_left_right():
    x = images(200)
    out = augmenter(flip=True)(x)
    mirrored = [np.array_equal(o, i[..., ::-1]) for o, i in zip(out, x)]
    kept = [np.array_equal(o, i) for o, i in zip(out, x)]
    assert all(m or k for m, k in zip(mirrored, kept))
    assert 70 < sum(mirrored) < 130


def tiny_job(augment: dict, **train) -> dict:
    return {"data": {"dataset": "synthetic", "samples": 200, "val_fraction": 0.1},
            "model": {"preset": "mlp", "hidden": [8]},
            "train": {"epochs": 2, "batch_size": 36, "seed": 5, "augment": augment, **train}}


def test_training_sees_augmented_inputs_with_their_own_labels():
    run = TrainingRun.from_spec(tiny_job({"shift": 2, "flip": True}))
    rows = {row.tobytes(): label for row, label in zip(run.dataset.x_train, run.dataset.t_train)}
    seen = []
    original = run.network.gradient

    def recording_gradient(x, t):
        seen.append((np.array(x), np.array(t)))
        return original(x, t)

    run.network.gradient = recording_gradient
    run.fit()
    batch, labels = seen[0]
    order = run.dataset.t_train[np.asarray(
        np.random.Generator(np.random.PCG64(5)).permutation(len(run.dataset.x_train))[:36])]
    np.testing.assert_array_equal(labels, order)          # the shuffled batch's own labels
    assert sum(row.tobytes() in rows for row in batch) < len(batch) // 2   # mostly transformed
    assert all(len(x) == len(t) for x, t in seen)


def test_shift_is_bounded_in_the_spec():
    with pytest.raises(SpecError) as err:
        parse_spec(tiny_job({"shift": 9}))
    assert err.value.path == "train.augment.shift"
