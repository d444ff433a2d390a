"""Import tensors trained elsewhere (``python -m nncore train`` on a laptop) as a stored model.

The job spec says which network the tensors belong to; every tensor of that network must be
in the ``.npz`` with its exact name, shape and the spec's dtype, and nothing else may be
(except the ``meta.json`` entry nncore's model files carry, whose layers must then equal the
spec's). Headers are checked before any array is read, arrays are read with
``allow_pickle=False``, and the model, its tensors and its lineage go in one transaction:
a bad file stores nothing. No Flask here.
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
from sqlalchemy.orm import Session

import nncore
from nncore.modelfile import META_KEY
from service.db.lineage import imported_lineage
from service.db.models import Model
from service.db.scope import transactional
from service.db.tensors import tensor_rows
from service.db.values import finite
from service.spec import validate_spec

NPY_SUFFIX = ".npy"
DEFAULT_NAME = "imported"
MAX_META_BYTES = 1 << 20  # a model file's meta.json: layers, data section, metrics per epoch


class ImportRejected(ValueError):
    """A file that does not fit the spec's network; ``problems`` are (field, message)."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("; ".join(f"{field}: {msg}" for field, msg in problems))
        self.problems = problems


def _field(name: str) -> str:
    return f"state.{name}"


def _headers(archive: zipfile.ZipFile) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """name -> (shape, dtype) from each member's .npy header, without reading its data."""
    fmt = np.lib.format
    headers = {}
    for member in archive.namelist():
        name = member.removesuffix(NPY_SUFFIX)
        try:
            with archive.open(member) as f:
                version = fmt.read_magic(f)
                read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
                shape, _fortran, dtype = read(f)
        except (ValueError, OSError, EOFError) as exc:
            raise ImportRejected([(_field(name), f"not a readable .npy entry ({exc})")]) from None
        headers[name] = (tuple(shape), dtype)
    return headers


def _expected(spec: nncore.JobSpec) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """The spec's network's tensor shapes and roles (built once, never trained)."""
    expansion = spec.expansion
    net = nncore.Network(expansion.layers, expansion.input_shape, spec.num_classes,
                         dtype=spec.train.dtype)
    return {name: tuple(a.shape) for name, a in net.state_dict().items()}, net.tensor_roles()


def check_state(data: bytes, spec: nncore.JobSpec) -> tuple[dict[str, np.ndarray], dict]:
    """The tensors of an ``.npz`` checked against the spec's network, and the model file's
    metadata (empty for a bare state). Raises ImportRejected naming each bad tensor."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ImportRejected([("state", f"not an .npz archive ({exc})")]) from None
    with archive:
        headers = _headers(archive)
    shapes, _roles = _expected(spec)
    dtype = np.dtype(spec.train.dtype)
    problems = [(_field(name), "missing: the spec's network has this tensor")
                for name in shapes if name not in headers]
    for name, (shape, found) in headers.items():
        if name == META_KEY:
            if found != np.uint8 or len(shape) != 1 or shape[0] > MAX_META_BYTES:
                limit = f"must be UTF-8 JSON of at most {MAX_META_BYTES} bytes (uint8)"
                problems.append((_field(name), limit))
            continue
        if name not in shapes:
            problems.append((_field(name), "unexpected: the spec's network has no such tensor"))
        elif shape != shapes[name]:
            problems.append((_field(name), f"shape {list(shape)}, expected {list(shapes[name])}"))
        elif found != dtype:
            expected = f"expected {dtype.name} (the spec's train.dtype)"
            problems.append((_field(name), f"dtype {found}, {expected}"))
    if problems:
        raise ImportRejected(problems)
    state = nncore.state_from_bytes(data)
    meta = _meta(state.pop(META_KEY, None), spec)
    bad = [(_field(name), "contains NaN or infinite values")
           for name, array in state.items() if not np.isfinite(array).all()]
    if bad:
        raise ImportRejected(bad)
    return state, meta


def _meta(entry: np.ndarray | None, spec: nncore.JobSpec) -> dict:
    """nncore's model-file metadata, whose layers must be the spec's."""
    if entry is None:
        return {}
    try:
        meta = json.loads(entry.tobytes().decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise ImportRejected([(_field(META_KEY), f"not JSON ({exc})")]) from None
    if not isinstance(meta, dict):
        raise ImportRejected([(_field(META_KEY), "must be a JSON object")])
    if "layers" in meta and meta["layers"] != spec.layers:
        raise ImportRejected([(_field(META_KEY), "layers differ from the spec's layers")])
    return meta


def _metrics(meta: dict) -> dict:
    """The metrics row of the epoch a model file holds (its ``model_epoch``, else the last),
    numbers only, as a stored model keeps them."""
    rows = meta.get("metrics")
    if not isinstance(rows, list) or not rows:
        return {}
    epoch = meta.get("model_epoch")
    index = epoch - 1 if isinstance(epoch, int) and 1 <= epoch <= len(rows) else len(rows) - 1
    row = rows[index] if isinstance(rows[index], dict) else {}
    metrics = {k: (finite(v) if isinstance(v, float) else v) for k, v in row.items()
               if isinstance(v, int | float) and not isinstance(v, bool)}
    return {**metrics, "epochs": len(rows)} if metrics else {}


@transactional
def import_model(session: Session, data: bytes, spec_data) -> Model:
    """Store an ``.npz`` of tensors as a model of the spec's network, with its lineage.
    Raises SpecError for the spec, ImportRejected for the tensors."""
    spec = validate_spec(spec_data)
    state, meta = check_state(data, spec)
    _shapes, roles = _expected(spec)
    fingerprint = meta.get("data_fingerprint")
    expansion = spec.expansion
    model = Model(
        name=spec.name or DEFAULT_NAME, input_shape=list(expansion.input_shape),
        num_classes=spec.num_classes, dtype=spec.train.dtype, layers=expansion.layers,
        metrics=_metrics(meta), data_fingerprint=fingerprint if isinstance(fingerprint, str)
        else None, tensors=tensor_rows(state, roles))
    session.add(model)
    session.flush()
    lineage = imported_lineage(spec, model.data_fingerprint)
    lineage.model_id = model.id
    session.add(lineage)
    session.flush()
    return model
