"""IDX file reader (the format of MNIST and Fashion-MNIST), gzip or raw.

An IDX file is a 4-byte magic number ``00 00 <dtype code> <ndim>``, then ``ndim``
big-endian uint32 dimensions, then the C-order payload in big-endian ``dtype``.
Every field is checked so a corrupt, truncated or wrong file fails with a
``DataError`` that names the file instead of producing garbage arrays.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from nncore.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
HEADER_BYTES = 4
DIM_BYTES = 4
MAX_NDIM = 8

# IDX dtype code -> big-endian numpy dtype (from the format's definition).
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: str) -> bytes:
    """Whole file content, gunzipped when it starts with the gzip magic."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc.strerror or exc})") from exc
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt or truncated gzip data ({exc})") from exc


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into a native-endian array; ``name`` is used in errors."""
    if len(data) < HEADER_BYTES:
        raise DataError(f"{name}: not an IDX file (only {len(data)} bytes)")
    zero0, zero1, code, ndim = data[:HEADER_BYTES]
    if zero0 != 0 or zero1 != 0:
        raise DataError(f"{name}: not an IDX file (bad magic number {data[:4].hex()})")
    if code not in IDX_DTYPES:
        raise DataError(f"{name}: unknown IDX dtype code 0x{code:02x}")
    if ndim == 0 or ndim > MAX_NDIM:
        raise DataError(f"{name}: bad IDX dimension count {ndim}")
    header_end = HEADER_BYTES + DIM_BYTES * ndim
    if len(data) < header_end:
        raise DataError(f"{name}: truncated IDX header (expected {ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=HEADER_BYTES))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_end
    if actual != expected:
        kind = "truncated" if actual < expected else "oversized"
        raise DataError(
            f"{name}: {kind} IDX payload: header {shape} of {dtype.name} needs "
            f"{expected} bytes, file has {actual}"
        )
    array = np.frombuffer(data, dtype, offset=header_end).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # a writable copy, native byte order


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gz or raw, detected by magic bytes) into a numpy array."""
    path = os.fspath(path)
    return parse_idx(_read_bytes(path), path)
