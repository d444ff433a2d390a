"""The Python client of the nnq API: ``from nnq import Client``.

One method per resource; each returns a typed object (``nnq.resources``) bound to the client,
or raises an ``nnq.errors.NnqError`` subclass. The CLI is a thin layer over this class, and
this is the only HTTP client in nnq (``nnq.transport`` does the HTTP and the retries).

    client = Client()                      # NNQ_API_URL / NNQ_API_TOKEN, or url=, token=
    job = client.submit("examples/synthetic-tiny.json").wait()
    job.metrics().to_dataframe()
    labels, probabilities = client.predict(job.model_id, x)

numpy is imported only by ``predict`` and ``download_state``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from nnq.resources import (
    Alias,
    Health,
    Job,
    Lineage,
    Metrics,
    Model,
    Prediction,
    Promotion,
    Reproduction,
    Sweep,
)
from nnq.transport import API_PREFIX, DEFAULT_API_URL, IDEMPOTENCY_HEADER, Transport

__all__ = ["API_PREFIX", "DEFAULT_API_URL", "MAX_PREDICT_SAMPLES", "Client", "items"]

MAX_PREDICT_SAMPLES = 1000  # the API's per-request limit (service.inference.MAX_SAMPLES)
NPY_CONTENT_TYPE = "application/octet-stream"
JSON_CONTENT_TYPE = "application/json"
LIST_LIMIT = 50


def items(payload: Any) -> list:
    """The rows of a list response, whether bare or wrapped in {"items": [...]}."""
    if isinstance(payload, list):
        return payload
    for key in ("items", "jobs", "models", "metrics", "data"):
        if isinstance(payload.get(key), list):
            return payload[key]
    return []


def _read_json(source: dict | str | Path) -> dict:
    if isinstance(source, dict):
        return source
    return json.loads(Path(source).read_text())


def _keyed(idempotency_key: str | None) -> dict:
    return {IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else {}


class Client:
    """The nnq API at ``url`` (default: NNQ_API_URL, else http://127.0.0.1:5000) with the
    bearer ``token`` (default: NNQ_API_TOKEN). Use as a context manager or call ``close()``."""

    def __init__(self, url: str | None = None, token: str | None = None, **transport: Any):
        self.transport = Transport(url, token, **transport)

    @property
    def url(self) -> str:
        return self.transport.base_url

    def __repr__(self) -> str:
        return f"Client(url={self.url!r})"

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- jobs -----------------------------------------------------------------------------

    def submit(self, spec: dict | str | Path, idempotency_key: str | None = None) -> Job:
        """Queue a training job from a spec dict or a JSON file. A repeated
        ``idempotency_key`` returns the same job (and makes the call safe to retry)."""
        body = self.transport.post("/jobs", json=_read_json(spec),
                                   headers=_keyed(idempotency_key))
        return self._job(body)

    def job(self, job_id: int | str) -> Job:
        return self._job(self.transport.get(f"/jobs/{job_id}"))

    def jobs(self, status: str | None = None, name: str | None = None, *,
             sweep_id: int | None = None, limit: int = LIST_LIMIT, offset: int = 0) -> list[Job]:
        """Jobs, newest first (at most ``limit``, up to 500)."""
        payload = self.transport.get("/jobs", status=status, name=name, sweep_id=sweep_id,
                                     limit=limit, offset=offset)
        return [self._job(row) for row in items(payload)]

    def cancel(self, job_id: int | str) -> Job:
        """Cancel a queued (ends at once) or running (stops between iterations) job;
        Conflict if it is already finished."""
        return self._job(self.transport.post(f"/jobs/{job_id}/cancel"))

    def metrics(self, job_id: int | str) -> Metrics:
        return Metrics.model_validate(self.transport.get(f"/jobs/{job_id}/metrics")).bind(self)

    def _job(self, body: dict) -> Job:
        return Job.model_validate(body).bind(self)

    # --- sweeps ---------------------------------------------------------------------------

    def submit_sweep(self, request: dict | str | Path,
                     idempotency_key: str | None = None) -> Sweep:
        """Queue a sweep from a request dict or a JSON file (see README, Sweeps)."""
        body = self.transport.post("/sweeps", json=_read_json(request),
                                   headers=_keyed(idempotency_key))
        return self._sweep(body)

    def sweep(self, sweep_id: int | str) -> Sweep:
        return self._sweep(self.transport.get(f"/sweeps/{sweep_id}"))

    def sweeps(self, status: str | None = None, *, limit: int = LIST_LIMIT,
               offset: int = 0) -> list[Sweep]:
        payload = self.transport.get("/sweeps", status=status, limit=limit, offset=offset)
        return [self._sweep(row) for row in items(payload)]

    def cancel_sweep(self, sweep_id: int | str) -> Sweep:
        return self._sweep(self.transport.post(f"/sweeps/{sweep_id}/cancel"))

    def promote(self, sweep_id: int | str, alias: str) -> Promotion:
        """Point ``alias`` at the sweep's best trial's model; Conflict while there is none."""
        body = self.transport.post(f"/sweeps/{sweep_id}/promote", json={"alias": alias})
        return Promotion.model_validate(body).bind(self)

    def sweep_importances(self, sweep_id: int | str) -> dict:
        """``{"evaluator", "trials", "importances": [{"param", "importance"}], "note"}``:
        Optuna's parameter importances over the sweep's succeeded trials, most important
        first. ``/history`` and ``/parallel-coordinates`` have the other views."""
        return self.transport.get(f"/sweeps/{sweep_id}/importances")

    def _sweep(self, body: dict) -> Sweep:
        return Sweep.model_validate(body).bind(self)

    # --- models ---------------------------------------------------------------------------

    def models(self, *, limit: int = LIST_LIMIT, offset: int = 0) -> list[Model]:
        payload = self.transport.get("/models", limit=limit, offset=offset)
        return [Model.model_validate(row).bind(self) for row in items(payload)]

    def model(self, ref: int | str) -> Model:
        """A model by id or alias."""
        return Model.model_validate(self.transport.get(f"/models/{ref}")).bind(self)

    def set_alias(self, name: str, model_id: int) -> Alias:
        body = self.transport.put(f"/models/aliases/{name}", json={"model_id": model_id})
        return Alias.model_validate(body).bind(self)

    def download_state(self, ref: int | str) -> dict:
        """Every stored tensor (BatchNorm running statistics included) as numpy arrays,
        read with ``allow_pickle=False``."""
        import numpy as np

        data = self.transport.request("GET", f"/models/{ref}/state.npz").content
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}

    def predict(self, ref: int | str, x: Any, *, batch_size: int | None = None):
        """``(labels, probabilities)`` as numpy arrays (N,) and (N, classes) for ``x``: a
        numpy array (N×784, N×1×28×28, or one sample), or a path to a ``.png`` (28×28
        grayscale), ``.npy`` or ``.json`` file (``{"inputs": [...]}`` or a bare list, sent as
        is). Arrays are sent as ``.npy`` bodies, ``batch_size`` (default 1000, the API's
        limit) samples per request."""
        import numpy as np

        if isinstance(x, (str, Path)):
            path = Path(x)
            suffix = path.suffix.lower()
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no such file")
            if suffix == ".png":
                return self._predicted(self._predict_once(ref, files={
                    "image": (path.name, path.read_bytes(), "image/png")}))
            if suffix == ".json":
                body = json.loads(path.read_text())
                return self._predicted(self._predict_once(
                    ref, json=body if isinstance(body, dict) else {"inputs": body}))
            if suffix != ".npy":
                raise ValueError(f"{path}: expected a .json, .npy or .png file")
            try:
                x = np.load(path, allow_pickle=False)
            except ValueError:  # not an array numpy can read: the server says what is wrong
                return self._predicted(self._predict_once(
                    ref, content=path.read_bytes(), headers={"Content-Type": NPY_CONTENT_TYPE}))
        x = np.asarray(x)
        if x.ndim in (1, 3) or x.shape == (28, 28):
            x = x[None]
        step = batch_size or MAX_PREDICT_SAMPLES
        answers = [self._predict_once(ref, content=_npy(x[start:start + step]),
                                      headers={"Content-Type": NPY_CONTENT_TYPE})
                   for start in range(0, max(len(x), 1), step)]
        labels = [label for answer in answers for label in answer.labels]
        probabilities = [row for answer in answers for row in answer.probabilities]
        return self._arrays(labels, probabilities)

    def _predict_once(self, ref: int | str, **body: Any) -> Prediction:
        return Prediction.model_validate(self.transport.post(f"/models/{ref}/predict", **body))

    def _predicted(self, answer: Prediction):
        return self._arrays(answer.labels, answer.probabilities)

    @staticmethod
    def _arrays(labels: list, probabilities: list):
        import numpy as np

        return np.asarray(labels, dtype=np.int64), np.asarray(probabilities, dtype=np.float64)

    # --- lineage, reproduction, export, import ---------------------------------------------

    def lineage(self, ref: int | str) -> Lineage:
        """Where the model came from: spec, seeds, data hashes, environment, attempts, and
        each reproduction's verdict."""
        return Lineage.model_validate(self.transport.get(f"/models/{ref}/lineage")).bind(self)

    def reproduce(self, ref: int | str) -> Reproduction:
        """Re-train the model from its recorded spec and seeds; ``.wait()`` gives the verdict.
        Conflict (409) when a recorded data file is gone or changed."""
        body = self.transport.post(f"/models/{ref}/reproduce")
        return Reproduction.model_validate(body["reproduction"]).bind(self)

    def export_onnx(self, ref: int | str, path: str | Path | None = None) -> bytes:
        """The model as ONNX bytes (input ``input``, output ``probabilities``), also written
        to ``path`` when given."""
        data = self.transport.request("GET", f"/models/{ref}/model.onnx").content
        if path is not None:
            Path(path).write_bytes(data)
        return data

    def import_model(self, state: str | Path | bytes, spec: dict | str | Path) -> Model:
        """Store tensors trained elsewhere (a ``python -m nncore train`` model file or a
        ``state.npz``) as a model of ``spec``'s network; SpecError (422) names a tensor that
        is missing, extra, or of the wrong shape or dtype."""
        data = state if isinstance(state, bytes) else Path(state).read_bytes()
        files = {"state": ("state.npz", data, NPY_CONTENT_TYPE),
                 "spec": ("spec.json", json.dumps(_read_json(spec)).encode(), JSON_CONTENT_TYPE)}
        return Model.model_validate(self.transport.post("/models/import", files=files)
                                    ).bind(self)

    # --- service --------------------------------------------------------------------------

    def health(self) -> Health:
        """DB, broker and worker reachability; Unavailable (503) while the DB is down."""
        return Health.model_validate(self.transport.get("/health")).bind(self)


def _npy(array) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()
