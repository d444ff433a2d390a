"""Stored-model inference: rebuild once per process, then answer from memory.

A model is rebuilt from its expanded layer list with ``nncore.build`` and its stored tensors
(parameters and BatchNorm running statistics) are loaded; ``predict_proba`` runs the eval-mode
forward. Inputs are cast to the model's dtype exactly as training data were, so for the same
samples, batch and dtype the numbers equal the worker's bit for bit. No Flask here.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import math
import threading

import numpy as np
from sqlalchemy.orm import Session

import nncore
from nncore.data.datasets import PIXEL_SCALE
from service.db import MAX_ID
from service.db import model_store as models
from service.db.tensors import state_from_rows

MAX_SAMPLES = 1000
CACHE_SIZE = 16
IMAGE_SIDE = 28
NUMERIC_KINDS = "biuf"


class ModelNotFound(LookupError):
    """No model with that id, and no alias with that name."""


class InputError(ValueError):
    """Inputs that cannot be fed to the model; ``field`` names the offending part."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclasses.dataclass
class LoadedModel:
    """A rebuilt network and the lock that keeps its layers' forward caches per call."""

    net: object
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(labels (N,), probabilities (N, num_classes)) from the eval-mode forward."""
        with self.lock:
            proba = np.asarray(nncore.to_numpy(self.net.predict_proba(x)))
        return proba.argmax(axis=1), proba


def _key(session: Session, model_id: int) -> tuple[str, int]:
    """Model ids are per database, so the database URL is part of the key."""
    return str(session.get_bind().url), model_id


class ModelCache:
    """Rebuilt networks keyed by (database, model id); least recently used ones are dropped.

    Stored models never change, so an entry never goes stale.
    """

    def __init__(self, size: int = CACHE_SIZE):
        self.size = size
        self._nets: collections.OrderedDict[tuple, LoadedModel] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: Session, model_id: int) -> LoadedModel:
        key = _key(session, model_id)
        with self._lock:
            net = self._nets.get(key)
            if net is not None:
                self._nets.move_to_end(key)
                return net
        net = LoadedModel(load_network(session, model_id))
        with self._lock:
            self._nets[key] = net
            while len(self._nets) > self.size:
                self._nets.popitem(last=False)
        return net

    def has(self, session: Session, model_id: int) -> bool:
        return _key(session, model_id) in self._nets


CACHE = ModelCache()


def resolve_ref(session: Session, ref: str) -> int:
    """A model id from ``ref`` (digits: an id, else an alias name); raises ModelNotFound."""
    if ref.isdigit():
        model_id = int(ref)
        known = model_id <= MAX_ID and (
            CACHE.has(session, model_id) or models.get_model(session, model_id) is not None)
        if known:
            return model_id
        raise ModelNotFound(f"no model {model_id}")
    model_id = models.alias_target(session, ref)
    if model_id is None:
        raise ModelNotFound(f"no model or alias named {ref!r}")
    return model_id


def load_network(session: Session, model_id: int):
    """The stored model rebuilt with its tensors."""
    model = models.get_model(session, model_id)
    if model is None:
        raise ModelNotFound(f"no model {model_id}")
    net = nncore.build({"layers": model.layers}, tuple(model.input_shape), model.num_classes,
                       dtype=model.dtype)
    net.load_state_dict(state_from_rows(models.tensors(session, model_id)))
    return net


def shape_inputs(x: np.ndarray, input_shape: tuple, dtype, field: str = "inputs") -> np.ndarray:
    """(N, *input_shape) in the model's dtype; accepts flat samples or image-shaped ones."""
    if x.dtype.kind not in NUMERIC_KINDS:
        raise InputError(field, f"must be numbers, got dtype {x.dtype}")
    size = math.prod(input_shape)
    if x.ndim >= 1 and x.shape == (size,):
        x = x[None]
    accepted = {(size,), tuple(input_shape), tuple(d for d in input_shape if d != 1)}
    if size == IMAGE_SIDE * IMAGE_SIDE:
        accepted |= {(1, IMAGE_SIDE, IMAGE_SIDE), (IMAGE_SIDE, IMAGE_SIDE)}
    if x.ndim < 2 or tuple(x.shape[1:]) not in accepted:
        shapes = " or ".join(str(shape) for shape in sorted(accepted, key=len))
        raise InputError(field, f"each sample must have {size} values (shape {shapes}); "
                                f"got samples of shape {tuple(x.shape[1:])}")
    if len(x) == 0:
        raise InputError(field, "needs at least one sample")
    if len(x) > MAX_SAMPLES:
        raise InputError(field, f"{len(x)} samples; at most {MAX_SAMPLES} per request")
    out = x.astype(dtype).reshape(len(x), *input_shape)
    if not np.isfinite(out).all():
        raise InputError(field, "contains NaN or infinite values")
    return out


def from_json(inputs: list) -> np.ndarray:
    """Nested JSON lists -> an array (float64, so float32 values round-trip exactly)."""
    try:
        return np.asarray(inputs, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise InputError("inputs", "must be a list of equally shaped samples of numbers "
                                   f"({exc})") from None


def from_npy(data: bytes) -> np.ndarray:
    """An .npy body; never unpickles, and never trusts the header's size over the bytes sent."""
    fmt = np.lib.format
    try:
        f = io.BytesIO(data)
        version = fmt.read_magic(f)
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _fortran, dtype = read_header(f)
        if dtype.hasobject:
            raise ValueError("object arrays are not accepted")
        if math.prod(shape) * dtype.itemsize != len(data) - f.tell():
            raise ValueError(f"header declares {shape} {dtype} but the body has "
                             f"{len(data) - f.tell()} data bytes")
        return fmt.read_array(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError("body", f"not a readable .npy array ({exc})") from None


def from_png(files: list[bytes]) -> np.ndarray:
    """28x28 grayscale PNGs -> float32 pixels scaled to [0, 1] exactly as the datasets are."""
    from PIL import Image

    pixels = []
    for i, data in enumerate(files):
        field = "image" if len(files) == 1 else f"image[{i}]"
        try:
            with Image.open(io.BytesIO(data)) as img:
                if img.format != "PNG":
                    raise InputError(field, f"must be a PNG image, got {img.format}")
                if img.size != (IMAGE_SIDE, IMAGE_SIDE):
                    raise InputError(field, f"must be {IMAGE_SIDE}x{IMAGE_SIDE} pixels, "
                                            f"got {img.size[0]}x{img.size[1]}")
                pixels.append(np.asarray(img.convert("L"), dtype=np.uint8))
        except InputError:
            raise
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            raise InputError(field, f"not a readable PNG image ({exc})") from None
    raw = np.stack(pixels)                                  # (N, 28, 28) uint8
    out = np.empty(raw.shape, np.float32)
    np.multiply(raw, PIXEL_SCALE, out=out)
    return out

