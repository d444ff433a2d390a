"""Datasets by name: MNIST and Fashion-MNIST from IDX files, and a seeded synthetic set.

Every dataset comes back the same way: float32 inputs in [0, 1], int64 labels, a
validation split drawn from the training set by a seeded permutation (selection
never touches test data), and a fingerprint identifying exactly what a model saw.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os

import numpy as np

from nncore.data.idx import read_idx
from nncore.data.spec import DATASETS, DataSpec
from nncore.data.synthetic import NUM_CLASSES, make_synthetic
from nncore.errors import DataError, SpecError
from nncore.schema import validate

IMAGE_SHAPE = (1, 28, 28)
PIXEL_SCALE = np.float32(1.0 / 255.0)
SYNTHETIC_TEST_FRACTION = 0.2
DATA_DIR_ENV = "NNQ_DATA_DIR"
SYSTEM_DIRS = {
    "mnist": ("/usr/share/datasets/mnist",),
    "fashion-mnist": ("/usr/share/datasets/fashion-mnist",),
}
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "t_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "t_test": "t10k-labels-idx1-ubyte",
}


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Train/val/test arrays; inputs (N, *input_shape) float32, labels (N,) int64."""

    name: str
    x_train: np.ndarray
    t_train: np.ndarray
    x_val: np.ndarray
    t_val: np.ndarray
    x_test: np.ndarray
    t_test: np.ndarray
    input_shape: tuple[int, ...]
    num_classes: int
    fingerprint: str


def _candidate_dirs(name: str, data_dir) -> list[str]:
    """Where to look, in order: data_dir, $NNQ_DATA_DIR (each also with /<name>), system dirs."""
    dirs = []
    for base in (data_dir, os.environ.get(DATA_DIR_ENV)):
        if base:
            dirs += [os.path.join(os.fspath(base), name), os.fspath(base)]
    return dirs + list(SYSTEM_DIRS.get(name, ()))


def _find_file(directory: str, stem: str) -> str | None:
    for candidate in (stem + ".gz", stem):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None


def _locate(name: str, data_dir) -> dict[str, str]:
    """Paths of the four IDX files from the first directory that has all of them."""
    searched = _candidate_dirs(name, data_dir)
    for directory in searched:
        paths = {key: _find_file(directory, stem) for key, stem in IDX_FILES.items()}
        if all(paths.values()):
            return paths
    raise DataError(
        f"dataset {name!r}: IDX files ({', '.join(IDX_FILES.values())}, raw or .gz) not found; "
        f"searched {searched or 'nothing'}; set {DATA_DIR_ENV} or pass a data directory"
    )


@functools.lru_cache(maxsize=8)
def _read_cached(path: str, size: int, mtime_ns: int) -> np.ndarray:
    """Decoded IDX array, kept so sweeps in one worker do not gunzip the same file again."""
    array = read_idx(path)
    array.flags.writeable = False
    return array


def _read(path: str) -> np.ndarray:
    st = os.stat(path)
    return _read_cached(path, st.st_size, st.st_mtime_ns)


def _check_images(raw: np.ndarray, path: str) -> np.ndarray:
    if raw.dtype != np.uint8 or raw.ndim != 3 or raw.shape[1:] != IMAGE_SHAPE[1:]:
        raise DataError(f"{path}: expected uint8 images of 28x28, got {raw.dtype} {raw.shape}")
    return raw


def _as_inputs(x: np.ndarray) -> np.ndarray:
    """(N, 28, 28) uint8 pixels or float32 in [0, 1] -> float32 (N, 1, 28, 28) in [0, 1]."""
    if x.dtype == np.float32:
        return x.reshape(len(x), *IMAGE_SHAPE)
    out = np.empty((len(x), *IMAGE_SHAPE), np.float32)
    np.multiply(x.reshape(out.shape), PIXEL_SCALE, out=out)
    return out


def _labels(raw: np.ndarray, path: str, n: int, num_classes: int) -> np.ndarray:
    if raw.ndim != 1 or raw.shape[0] != n:
        raise DataError(f"{path}: expected {n} labels, got shape {raw.shape}")
    if raw.size and (raw.min() < 0 or raw.max() >= num_classes):
        raise DataError(f"{path}: labels outside 0..{num_classes - 1}")
    return raw.astype(np.int64)


def _load_idx_set(name: str, data_dir):
    paths = _locate(name, data_dir)
    x_train = _check_images(_read(paths["x_train"]), paths["x_train"])
    x_test = _check_images(_read(paths["x_test"]), paths["x_test"])
    t_train = _labels(_read(paths["t_train"]), paths["t_train"], len(x_train), NUM_CLASSES)
    t_test = _labels(_read(paths["t_test"]), paths["t_test"], len(x_test), NUM_CLASSES)
    return x_train, t_train, x_test, t_test


def _load_synthetic(samples: int, seed: int):
    x, t = make_synthetic(samples, seed)              # (N, 28, 28) float32
    n_test = round(samples * SYNTHETIC_TEST_FRACTION)
    return x[n_test:], t[n_test:], x[:n_test], t[:n_test]


def _fingerprint(arrays) -> str:
    """sha256 over dtype, shape and bytes of each array, in order."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


def load_dataset(name: str, data_dir=None, *, flatten: bool = True, **options) -> Dataset:
    """Load ``name`` (one of DATASETS); inputs (N, 784) when ``flatten`` else (N, 1, 28, 28).

    ``options`` are the data section's fields (``DataSpec``, which holds their defaults):
    ``val_fraction`` of the training set (seeded permutation) becomes the validation set;
    ``train_limit`` then keeps N of the remaining training samples, the first N in file order
    (``train_subset`` "first") or N drawn by the same permutation ("random"). ``samples``
    only applies to ``synthetic``, whose data also depends on ``seed``. Raises DataError on
    bad input.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    try:
        spec = validate(DataSpec, {"dataset": name, **options})
    except SpecError as exc:
        raise DataError(str(exc)) from None
    sources = () if name == "synthetic" else _file_stamps(_locate(name, data_dir))
    return _load_cached(spec.model_dump_json(), data_dir, flatten, sources)


# A worker keeps the last few datasets it built, so the jobs of a sweep (or a user's next
# job) skip the split, the float conversion and the fingerprint: for Fashion-MNIST about
# 220 MB each, for the synthetic set most of a tiny job's start-up. Keyed by the whole data
# section and by each IDX file's path, size and mtime; the arrays are read-only.
DATASET_CACHE_SIZE = 2


def _file_stamps(paths: dict[str, str]) -> tuple:
    stats = ((path, os.stat(path)) for path in paths.values())
    return tuple((path, st.st_size, st.st_mtime_ns) for path, st in stats)


@functools.lru_cache(maxsize=DATASET_CACHE_SIZE)
def _load_cached(spec_json: str, data_dir, flatten: bool, _sources: tuple) -> Dataset:
    dataset = _load(DataSpec.model_validate_json(spec_json), data_dir, flatten)
    for field in dataclasses.fields(dataset):
        value = getattr(dataset, field.name)
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return dataset


def _load(spec: DataSpec, data_dir, flatten: bool) -> Dataset:
    name, val_fraction, train_limit, seed = (spec.dataset, spec.val_fraction, spec.train_limit,
                                             spec.seed)
    if name == "synthetic":
        x_train, t_train, x_test, t_test = _load_synthetic(spec.samples, seed)
    else:
        x_train, t_train, x_test, t_test = _load_idx_set(name, data_dir)

    perm = np.random.Generator(np.random.PCG64(seed)).permutation(len(x_train))
    n_val = round(len(x_train) * val_fraction)
    val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    if train_limit is not None and spec.train_subset == "first":
        train_idx = train_idx[:train_limit]
    elif train_limit is not None:
        train_idx = np.sort(perm[n_val:][:train_limit])
    # Split before converting pixels, so only the kept samples are ever float32.
    x_val, t_val = _as_inputs(x_train[val_idx]), t_train[val_idx]
    x_train, t_train = _as_inputs(x_train[train_idx]), t_train[train_idx]
    x_test = _as_inputs(x_test)

    input_shape = IMAGE_SHAPE
    if flatten:
        input_shape = (int(np.prod(IMAGE_SHAPE)),)
        x_train, x_val, x_test = (a.reshape(len(a), *input_shape)
                                  for a in (x_train, x_val, x_test))
    arrays = (x_train, t_train, x_val, t_val, x_test, t_test)
    return Dataset(name, *arrays, input_shape=input_shape, num_classes=NUM_CLASSES,
                   fingerprint=_fingerprint(arrays))
