"""Stored-model inference: rebuild once per process, then answer from memory.

A model is rebuilt from its expanded layer list with ``nncore.build`` and its stored tensors
(parameters and BatchNorm running statistics) are loaded; ``predict_proba`` runs the eval-mode
forward. Inputs are cast to the model's dtype exactly as training data were, so for the same
samples, batch and dtype the numbers equal the worker's bit for bit. No Flask here.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import functools
import io
import math
import threading
import time
from collections.abc import Callable

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

import nncore
from nncore.data.datasets import PIXEL_SCALE
from service.db import MAX_ID, Model
from service.db import model_store as models
from service.db.tensors import CorruptTensor, verified_state
from service.settings import settings

MAX_SAMPLES = 1000
CACHE_SIZE = 16
IMAGE_SIDE = 28
NUMERIC_KINDS = "biuf"


class ModelNotFound(LookupError):
    """No model with that id, and no alias with that name."""


class ModelCorrupt(ValueError):
    """A stored model whose tensors fail their checks; ``tensor`` names the bad one."""

    def __init__(self, model_id: int, exc: CorruptTensor):
        super().__init__(f"model {model_id} cannot be used: {exc}")
        self.model_id, self.tensor, self.problem = model_id, exc.tensor, exc.problem


class InputError(ValueError):
    """Inputs that cannot be fed to the model; ``field`` names the offending part."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclasses.dataclass
class LoadedModel:
    """A rebuilt network and the lock that keeps its layers' forward caches per call.

    ``created_at`` identifies the stored row it came from; ``fresh_until`` (monotonic seconds)
    is when the cache next checks that row still exists unchanged.
    """

    model_id: int
    net: object
    created_at: dt.datetime
    fresh_until: float
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(labels (N,), probabilities (N, num_classes)) from the eval-mode forward."""
        with self.lock:
            proba = np.asarray(nncore.to_numpy(self.net.predict_proba(x)))
        return proba.argmax(axis=1), proba


class ModelCache:
    """Rebuilt networks keyed by (database, model id); least recently used ones are dropped.

    The database is its ``sessionmaker`` (one per URL, ``service.db.session_factory``), so a
    request whose model is cached and fresh opens no session at all. Stored models never
    change; every ``predict_recheck_seconds`` (settings) an entry's row is read again (one
    primary-key read), so a model that vanished with a restored or reset database is noticed.

    Every load verifies each tensor (``stored_state``): a model that fails is not cached and
    raises ModelCorrupt on every request. The recheck compares the model row only (its
    ``created_at``), not the tensors: a tensor corrupted after the model was loaded is not
    seen while the entry stays cached; the entry keeps answering from the copy that was
    verified when it was loaded, until it is dropped (LRU, a changed row, a new process).
    """

    def __init__(self, size: int = CACHE_SIZE, clock: Callable[[], float] = time.monotonic):
        self.size, self.clock = size, clock
        self._nets: collections.OrderedDict[tuple, LoadedModel] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, sessions: sessionmaker[Session], model_id: int) -> LoadedModel:
        """The model, rebuilt on first use; raises ModelNotFound."""
        key = (sessions, model_id)
        with self._lock:
            loaded = self._nets.get(key)
            if loaded is not None and self.clock() < loaded.fresh_until:
                self._nets.move_to_end(key)
                return loaded
        loaded = self._check_or_load(sessions, model_id, loaded)
        with self._lock:
            self._nets[key] = loaded
            self._nets.move_to_end(key)
            while len(self._nets) > self.size:
                self._nets.popitem(last=False)
        return loaded

    def _check_or_load(self, sessions: sessionmaker[Session], model_id: int,
                       cached: LoadedModel | None) -> LoadedModel:
        fresh_until = self.clock() + settings().predict_recheck_seconds
        with sessions() as session:
            model = models.get_model(session, model_id) if model_id <= MAX_ID else None
            if model is None:
                self.forget(sessions, model_id)
                raise ModelNotFound(f"no model {model_id}")
            if cached is not None and cached.created_at == model.created_at:
                cached.fresh_until = fresh_until
                return cached
            try:
                net = load_network(session, model)
            except ModelCorrupt:
                self.forget(sessions, model_id)
                raise
            return LoadedModel(model_id, net, model.created_at, fresh_until)

    def forget(self, sessions: sessionmaker[Session], model_id: int) -> None:
        with self._lock:
            self._nets.pop((sessions, model_id), None)


CACHE = ModelCache()


def _as_id(ref: str) -> int | None:
    """``ref`` as a model id when it is ASCII digits (``"³".isdigit()`` is true, but ``int``
    refuses it), else None: an alias name."""
    return int(ref) if ref.isascii() and ref.isdigit() else None


def resolve_ref(session: Session, ref: str) -> int:
    """A model id from ``ref`` (digits: an id, else an alias name); raises ModelNotFound."""
    model_id = _as_id(ref)
    if model_id is not None:
        if model_id <= MAX_ID and models.get_model(session, model_id) is not None:
            return model_id
        raise ModelNotFound(f"no model {model_id}")
    return _alias_target(session, ref)


def _alias_target(session: Session, name: str) -> int:
    model_id = models.alias_target(session, name)
    if model_id is None:
        raise ModelNotFound(f"no model or alias named {name!r}")
    return model_id


def serving_model(sessions: sessionmaker[Session], ref: str) -> LoadedModel:
    """The cached model ``ref`` names, for predict: an id costs no database read while its
    entry is fresh; an alias costs one primary-key read, because another process may have
    moved it a moment ago. Raises ModelNotFound, or ModelCorrupt when a tensor fails its
    checks as the model is loaded."""
    model_id = _as_id(ref)
    if model_id is not None:
        return CACHE.get(sessions, model_id)
    with sessions() as session:
        model_id = _alias_target(session, ref)
    return CACHE.get(sessions, model_id)


def _rebuild(model: Model):
    """The model's network from its expanded layers, with fresh (untrained) weights."""
    return nncore.build({"layers": model.layers}, tuple(model.input_shape), model.num_classes,
                        dtype=model.dtype)


def stored_state(session: Session, model: Model, net=None) -> dict[str, np.ndarray]:
    """The model's tensors, each checked by sha256, size, name, shape and dtype against its
    row and against what the model's layers build (``net``, rebuilt when not given).
    Raises ModelCorrupt naming the first bad tensor."""
    net = _rebuild(model) if net is None else net
    tensors = {**net.params, **net.buffers}  # what state_dict() holds, without copying it
    expected = {name: (tuple(a.shape), np.dtype(a.dtype)) for name, a in tensors.items()}
    try:
        return verified_state(models.tensors(session, model.id), expected)
    except CorruptTensor as exc:
        raise ModelCorrupt(model.id, exc) from None


def load_network(session: Session, model: Model):
    """The stored model rebuilt with its verified tensors; raises ModelCorrupt."""
    net = _rebuild(model)
    net.load_state_dict(stored_state(session, model, net))
    return net


@functools.cache
def _accepted_shapes(input_shape: tuple) -> frozenset:
    """The sample shapes a model with ``input_shape`` takes: flat, its own, without unit axes,
    and 28x28 images for a 784-input model."""
    size = math.prod(input_shape)
    accepted = {(size,), input_shape, tuple(d for d in input_shape if d != 1)}
    if size == IMAGE_SIDE * IMAGE_SIDE:
        accepted |= {(1, IMAGE_SIDE, IMAGE_SIDE), (IMAGE_SIDE, IMAGE_SIDE)}
    return frozenset(accepted)


def shape_inputs(x: np.ndarray, input_shape: tuple, dtype, field: str = "inputs") -> np.ndarray:
    """(N, *input_shape) in the model's dtype; accepts flat samples or image-shaped ones."""
    if x.dtype.kind not in NUMERIC_KINDS:
        raise InputError(field, f"must be numbers, got dtype {x.dtype}")
    size = math.prod(input_shape)
    if x.ndim >= 1 and x.shape == (size,):
        x = x[None]
    accepted = _accepted_shapes(tuple(input_shape))
    if x.ndim < 2 or x.shape[1:] not in accepted:
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
    """An .npy body; never unpickles, and never trusts the header's size over the bytes sent.

    The array is a read-only view of the body (``shape_inputs`` copies it into the model's
    dtype anyway)."""
    fmt = np.lib.format
    try:
        f = io.BytesIO(data)
        version = fmt.read_magic(f)
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read_header(f)
        if dtype.hasobject:
            raise ValueError("object arrays are not accepted")
        count = math.prod(shape)
        if count * dtype.itemsize != len(data) - f.tell():
            raise ValueError(f"header declares {shape} {dtype} but the body has "
                             f"{len(data) - f.tell()} data bytes")
        flat = np.frombuffer(data, dtype=dtype, count=count, offset=f.tell())
        return flat.reshape(shape, order="F" if fortran else "C")
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

