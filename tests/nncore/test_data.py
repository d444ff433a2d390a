"""IDX reader and dataset loading: files written by the tests, including corrupt ones."""

import gzip
import os
import struct
import time

import numpy as np
import pytest

from nncore.data import DATASETS, load_dataset, read_idx
from nncore.errors import DataError

FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    """Encode ``array`` as IDX with the given dtype code (big-endian payload)."""
    dtypes = {0x08: ">u1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dtypes[code]).tobytes()


def write(path, data: bytes, gz: bool = False):
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_idx_set(directory, n_train=50, n_test=20, gz=True, seed=0):
    """A tiny MNIST-like set of the four standard files; returns the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)).astype(np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)).astype(np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    directory.mkdir(parents=True, exist_ok=True)
    for stem, array in arrays.items():
        write(directory / (stem + (".gz" if gz else "")), idx_bytes(array), gz)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trips_raw_and_gzip(tmp_path, gz):
    images = np.arange(3 * 28 * 28, dtype=np.int64).reshape(3, 28, 28) % 256
    path = write(tmp_path / "images", idx_bytes(images.astype(np.uint8)), gz)
    out = read_idx(path)
    assert out.dtype == np.uint8 and out.shape == (3, 28, 28)
    np.testing.assert_array_equal(out, images)


@pytest.mark.parametrize("code,dtype", [(0x0B, np.int16), (0x0C, np.int32), (0x0D, np.float32),
                                        (0x0E, np.float64)])
def test_read_idx_decodes_big_endian_dtypes_to_native(tmp_path, code, dtype):
    values = np.array([[1, -2, 300], [4, 5, -600]], dtype=dtype)
    out = read_idx(write(tmp_path / "v", idx_bytes(values, code)))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, values)


def test_bad_magic_names_the_file(tmp_path):
    data = bytearray(idx_bytes(np.zeros((2, 3), np.uint8)))
    data[0] = 0x12
    path = write(tmp_path / "bad-magic", bytes(data))
    with pytest.raises(DataError, match="bad-magic.*magic"):
        read_idx(path)


def test_unknown_dtype_code_is_rejected(tmp_path):
    data = bytearray(idx_bytes(np.zeros((2, 3), np.uint8)))
    data[2] = 0x07
    with pytest.raises(DataError, match="dtype code 0x07"):
        read_idx(write(tmp_path / "code", bytes(data)))


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_payload_is_rejected(tmp_path, gz):
    data = idx_bytes(np.zeros((4, 28, 28), np.uint8))[:-100]
    with pytest.raises(DataError, match="truncated"):
        read_idx(write(tmp_path / "short", data, gz))


def test_truncated_gzip_stream_is_rejected(tmp_path):
    compressed = gzip.compress(idx_bytes(np.ones((4, 28, 28), np.uint8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(DataError, match="cut.gz"):
        read_idx(path)


def test_header_dims_disagreeing_with_payload_are_rejected(tmp_path):
    data = bytearray(idx_bytes(np.zeros((4, 28, 28), np.uint8)))
    data[4:8] = struct.pack(">I", 5)                  # claims 5 images, holds 4
    with pytest.raises(DataError, match=r"\(5, 28, 28\)"):
        read_idx(write(tmp_path / "dims", bytes(data)))
    data[4:8] = struct.pack(">I", 3)                  # claims 3 images, holds 4
    with pytest.raises(DataError, match="oversized"):
        read_idx(write(tmp_path / "dims", bytes(data)))


def test_zero_dimensions_and_short_header_are_rejected(tmp_path):
    with pytest.raises(DataError, match="dimension count 0"):
        read_idx(write(tmp_path / "nodims", bytes([0, 0, 8, 0])))
    with pytest.raises(DataError, match="truncated IDX header"):
        read_idx(write(tmp_path / "hdr", bytes([0, 0, 8, 3, 0, 0, 0, 2])))
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(write(tmp_path / "tiny", b"\x00\x00"))


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="nowhere"):
        read_idx(tmp_path / "nowhere")


@pytest.mark.parametrize("gz", [False, True])
def test_load_dataset_reads_idx_files_from_data_dir(tmp_path, gz):
    arrays = write_idx_set(tmp_path / "mnist", gz=gz)
    ds = load_dataset("mnist", tmp_path, val_fraction=0.2, seed=3)
    assert ds.input_shape == (784,) and ds.num_classes == 10
    assert ds.x_train.shape == (40, 784) and ds.x_val.shape == (10, 784)
    assert ds.x_test.shape == (20, 784)
    for x in (ds.x_train, ds.x_val, ds.x_test):
        assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    for t in (ds.t_train, ds.t_val, ds.t_test):
        assert t.dtype == np.int64
    expected_test = arrays["t10k-images-idx3-ubyte"].reshape(20, -1).astype(np.float32) / 255
    np.testing.assert_allclose(ds.x_test, expected_test, rtol=1e-6)
    merged = np.sort(np.concatenate([ds.t_train, ds.t_val]))
    np.testing.assert_array_equal(merged, np.sort(arrays["train-labels-idx1-ubyte"]))


def test_a_loaded_dataset_is_shared_read_only_and_rebuilt_when_a_file_changes(tmp_path):
    write_idx_set(tmp_path, gz=False)
    first = load_dataset("mnist", tmp_path, val_fraction=0.2, seed=3)
    assert load_dataset("mnist", tmp_path, val_fraction=0.2, seed=3) is first
    assert load_dataset("mnist", tmp_path, val_fraction=0.3, seed=3) is not first
    with pytest.raises(ValueError, match="read-only"):
        first.x_train[0, 0] = 1.0
    time.sleep(0.01)  # a new mtime even on coarse clocks
    write_idx_set(tmp_path, gz=False, seed=1)
    changed = load_dataset("mnist", tmp_path, val_fraction=0.2, seed=3)
    assert changed is not first and changed.fingerprint != first.fingerprint


def test_data_dir_comes_from_environment(tmp_path, monkeypatch):
    write_idx_set(tmp_path, gz=False)
    monkeypatch.setenv("NNQ_DATA_DIR", str(tmp_path))
    ds = load_dataset("mnist", flatten=False, val_fraction=0.0)
    assert ds.x_train.shape == (50, 1, 28, 28) and ds.input_shape == (1, 28, 28)
    assert ds.x_val.shape == (0, 1, 28, 28)
    flat = load_dataset("mnist", val_fraction=0.0)
    assert flat.x_val.shape == (0, 784) and flat.x_train.shape == (50, 784)


def test_missing_files_raise_data_error_naming_dataset(tmp_path, monkeypatch):
    monkeypatch.delenv("NNQ_DATA_DIR", raising=False)
    with pytest.raises(DataError, match="'mnist'.*not found"):
        load_dataset("mnist", tmp_path / "empty")


def test_corrupt_file_in_set_raises_data_error(tmp_path):
    write_idx_set(tmp_path, gz=False)
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataError, match="train-labels-idx1-ubyte"):
        load_dataset("mnist", tmp_path)


def test_label_count_must_match_images(tmp_path):
    write_idx_set(tmp_path, gz=False)
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(np.zeros(49, np.uint8)))
    with pytest.raises(DataError, match="expected 50 labels"):
        load_dataset("mnist", tmp_path)


def test_unknown_dataset_and_bad_fractions_are_rejected():
    with pytest.raises(DataError, match="unknown dataset 'cifar'"):
        load_dataset("cifar")
    with pytest.raises(DataError, match="val_fraction"):
        load_dataset("synthetic", val_fraction=1.0)
    with pytest.raises(DataError, match="train_limit"):
        load_dataset("synthetic", train_limit=0)


def test_synthetic_is_deterministic_per_seed_and_shaped_like_mnist():
    a = load_dataset("synthetic", samples=500, seed=7)
    b = load_dataset("synthetic", samples=500, seed=7)
    c = load_dataset("synthetic", samples=500, seed=8)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert a.x_test.shape == (100, 784)                      # 20 % test split
    assert len(a.x_train) + len(a.x_val) == 400 and len(a.x_val) == 40
    assert a.x_train.dtype == np.float32 and a.t_train.dtype == np.int64
    assert 0.0 <= a.x_train.min() and a.x_train.max() <= 1.0
    assert set(np.unique(a.t_train)) == set(range(10))
    shaped = load_dataset("synthetic", samples=500, seed=7, flatten=False)
    assert shaped.x_train.shape[1:] == (1, 28, 28)
    np.testing.assert_array_equal(shaped.x_train.reshape(len(shaped.x_train), -1), a.x_train)


def test_synthetic_generates_quickly():
    start = time.perf_counter()
    load_dataset("synthetic", samples=2000)
    # A guard against accidental per-sample loops, far above the ~0.1 s it takes.
    assert time.perf_counter() - start < 5.0


def test_validation_split_and_train_limit_sizes():
    ds = load_dataset("synthetic", samples=1000, val_fraction=0.25, train_limit=300, seed=1)
    assert len(ds.x_val) == 200 and len(ds.x_train) == 300 and len(ds.x_test) == 200
    full = load_dataset("synthetic", samples=1000, val_fraction=0.25, seed=1)
    assert len(full.x_train) == 600
    np.testing.assert_array_equal(ds.x_val, full.x_val)     # the limit never changes val
    rows = {r.tobytes() for r in full.x_train}
    assert all(r.tobytes() in rows for r in ds.x_train)
    assert ds.fingerprint != full.fingerprint


def test_train_limit_takes_the_first_samples_after_the_split_unless_random_is_asked():
    full = load_dataset("synthetic", samples=1000, val_fraction=0.25, seed=1)
    first = load_dataset("synthetic", samples=1000, val_fraction=0.25, seed=1, train_limit=300)
    np.testing.assert_array_equal(first.x_train, full.x_train[:300])   # file order, like x[:300]
    np.testing.assert_array_equal(first.t_train, full.t_train[:300])
    drawn = load_dataset("synthetic", samples=1000, val_fraction=0.25, seed=1, train_limit=300,
                         train_subset="random")
    rows = {r.tobytes(): i for i, r in enumerate(full.x_train)}
    picked = sorted(rows[r.tobytes()] for r in drawn.x_train)
    assert len(set(picked)) == 300 and picked[-1] > 400                 # spread over all 600
    np.testing.assert_array_equal(drawn.x_val, full.x_val)
    again = load_dataset("synthetic", samples=1000, val_fraction=0.25, seed=1, train_limit=300,
                         train_subset="random")
    assert again.fingerprint == drawn.fingerprint != first.fingerprint


def test_validation_samples_come_from_training_not_test():
    a = load_dataset("synthetic", samples=600, seed=2)
    assert not any(np.array_equal(v, x) for v in a.x_val[:5] for x in a.x_test)


def test_datasets_lists_the_names():
    assert DATASETS == ("mnist", "fashion-mnist", "synthetic")


@pytest.mark.skipif(not os.path.isdir(FASHION_DIR),
                    reason=f"Fashion-MNIST not installed at {FASHION_DIR} (dataset-fashion-mnist)")
def test_fashion_mnist_loads_from_debian_location(monkeypatch):
    monkeypatch.delenv("NNQ_DATA_DIR", raising=False)
    ds = load_dataset("fashion-mnist", val_fraction=0.1, train_limit=1000)
    assert ds.x_val.shape == (6000, 784) and ds.x_train.shape == (1000, 784)
    assert ds.x_test.shape == (10000, 784)
    assert np.bincount(ds.t_test).tolist() == [1000] * 10
    assert ds.x_train.dtype == np.float32 and ds.x_train.max() == 1.0
