"""The API's resources as typed objects: Job, Sweep, Model and what they return.

Each class has exactly the properties of its schema in the served OpenAPI document
(`/api/v1/openapi.json`: JobOut, SweepOut, ModelOut, MetricsOut, ...; a test checks it), so
a field the server adds or drops shows up as a failing test, not as a silent gap. Objects
returned by a ``Client`` remember it: ``job.refresh()``, ``job.wait()``, ``job.metrics()``,
``sweep.promote("best")``, ``model.predict(x)``. pydantic and stdlib only at import time;
pandas and matplotlib are imported by the methods that need them.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, PrivateAttr

from nnq import sweep_view
from nnq.progress import POLL_SECONDS, follow
from nnq.status import JobStatus, SweepStatus

if TYPE_CHECKING:
    from nnq.client import Client

PANDAS_MISSING = "to_dataframe() needs pandas, which is not installed: pip install pandas"


class Resource(BaseModel):
    """Base: a pydantic model bound to the Client it came from; readable repr and HTML."""

    model_config = ConfigDict(extra="ignore")
    _client: Any = PrivateAttr(default=None)

    def bind(self, client: Client | None):
        self._client = client
        return self

    @property
    def client(self) -> Client:
        if self._client is None:
            raise RuntimeError(f"this {type(self).__name__} is not bound to a Client")
        return self._client

    def to_dict(self) -> dict:
        """The resource as JSON-ready data, in the API's field order."""
        return self.model_dump(mode="json")

    def _summary(self) -> list[tuple[str, Any]]:
        return [(name, getattr(self, name)) for name in type(self).model_fields]

    def _update(self, fresh: Resource) -> None:
        for name in type(self).model_fields:
            setattr(self, name, getattr(fresh, name))

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={value!r}" for key, value in self._summary())
        return f"{type(self).__name__}({fields})"

    __str__ = __repr__

    def _repr_html_(self) -> str:
        return html_table(f"{type(self).__name__}", [
            (key, _shown(value)) for key, value in self._summary()])


def _shown(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def html_table(title: str, rows: list[tuple[str, Any]]) -> str:
    """A two-column HTML table; every key and value is escaped."""
    body = "".join(f"<tr><th style='text-align:left'>{html.escape(str(key))}</th>"
                   f"<td style='text-align:left'>{html.escape(str(value))}</td></tr>"
                   for key, value in rows)
    return f"<table><caption>{html.escape(title)}</caption>{body}</table>"


# --- jobs ---------------------------------------------------------------------------------

class Progress(BaseModel):
    epoch: int
    iteration: int
    total_iterations: int


class MetricRow(BaseModel):
    epoch: int
    train_loss: float | None
    train_acc: float | None
    val_acc: float | None
    test_acc: float | None
    seconds: float | None


class Metrics(Resource):
    """A job's per-epoch metrics: iterate it for MetricRow objects, ``rows()`` for dicts,
    ``to_dataframe()`` for a pandas DataFrame (pandas is optional)."""

    job_id: int
    items: list[MetricRow]

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]

    def rows(self) -> list[dict]:
        return [row.model_dump() for row in self.items]

    def to_dataframe(self):
        """One row per epoch, a column per metric (index 0..n-1)."""
        try:
            import pandas
        except ImportError as exc:
            raise ImportError(PANDAS_MISSING) from exc
        return pandas.DataFrame(self.rows(), columns=list(MetricRow.model_fields))

    def _summary(self) -> list[tuple[str, Any]]:
        last = self.items[-1] if self.items else None
        return [("job_id", self.job_id), ("epochs", len(self.items)),
                ("last", last.model_dump() if last else None)]

    def _repr_html_(self) -> str:
        columns = list(MetricRow.model_fields)
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = "".join("<tr>" + "".join(
            f"<td>{html.escape(_shown(getattr(row, c)))}</td>" for c in columns) + "</tr>"
                       for row in self.items)
        return (f"<table><caption>job {self.job_id}: metrics per epoch</caption>"
                f"<tr>{head}</tr>{body}</table>")


class Job(Resource):
    """A training job (GET /jobs/{id})."""

    id: int
    name: str
    status: JobStatus
    device: str
    progress: Progress
    attempts: int
    max_attempts: int
    error: str | None
    model_id: int | None
    sweep_id: int | None
    cancel_requested: bool
    spec: dict[str, Any]
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    updated_at: dt.datetime

    @property
    def finished(self) -> bool:
        return self.status in JobStatus.FINISHED

    @property
    def epochs(self) -> int | None:
        return ((self.spec or {}).get("train") or {}).get("epochs")

    def _summary(self) -> list[tuple[str, Any]]:
        return [("id", self.id), ("name", self.name), ("status", str(self.status)),
                ("epoch", f"{self.progress.epoch}/{self.epochs or '?'}"),
                ("model_id", self.model_id), ("error", self.error)]

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={value!r}" for key, value in self._summary()
                           if key != "error" or value)
        return f"Job({fields})"

    __str__ = __repr__

    def refresh(self) -> Job:
        self._update(self.client.job(self.id))
        return self

    def progress_line(self) -> tuple[int, int | None, str]:
        """(iterations done, total, "status  epoch e/E") for a progress bar."""
        detail = f"{self.status}  epoch {self.progress.epoch or 0}/{self.epochs or '?'}"
        return self.progress.iteration or 0, self.progress.total_iterations, detail

    def wait(self, timeout: float | None = None, progress: bool = True, *,
             console=None, poll: float = POLL_SECONDS) -> Job:
        """Poll until the job is finished (succeeded, failed, cancelled or pruned) and return
        it; a failure is not raised, ``status`` and ``error`` tell. TimeoutError after
        ``timeout`` seconds."""
        def fetch():
            self.refresh()
            return (self, *self.progress_line(), self.finished)

        return follow(f"job {self.id}", fetch, timeout=timeout, show=progress, console=console,
                      poll=poll)

    def metrics(self) -> Metrics:
        return self.client.metrics(self.id)

    def cancel(self) -> Job:
        self._update(self.client.cancel(self.id))
        return self

    def model(self) -> Model | None:
        return self.client.model(str(self.model_id)) if self.model_id is not None else None

    def plot(self, ax=None, curves=None, label: str | None = None):
        """The lecture's figure: accuracy per epoch (train, val, test); returns the Figure.
        With ``ax`` it draws into that Axes (overlay several jobs), with ``label`` as prefix."""
        from nnq.plots import job_figure

        return job_figure(self.metrics(), title=f"job {self.id}: {self.name}", ax=ax,
                          curves=curves, label=label)


# --- sweeps -------------------------------------------------------------------------------

class Trial(BaseModel):
    index: int
    job_id: int | None
    params: dict[str, Any]
    status: str
    val_acc: float | None
    train_acc: float | None
    test_acc: float | None
    epochs: int
    model_id: int | None
    error: str | None
    chosen: bool = True  # False while an adaptive strategy has yet to choose its params


class Sweep(Resource):
    """A hyperparameter sweep (GET /sweeps/{id}); from a list, ``trials``, ``best`` and
    ``request`` are None until ``refresh()``."""

    id: int
    name: str
    status: SweepStatus
    metric: str
    strategy: str
    counts: dict[str, int]
    best_job_id: int | None
    error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None
    trials: list[Trial] | None = None
    best: Trial | None = None
    request: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        return self.status in SweepStatus.FINISHED

    def _summary(self) -> list[tuple[str, Any]]:
        best = self.best
        return [("id", self.id), ("name", self.name), ("status", str(self.status)),
                ("trials", sweep_view.counts_line(self.to_dict())),
                ("best", f"{self.metric} {best.model_dump().get(self.metric)} (trial "
                         f"{best.index}, model {best.model_id})" if best else None)]

    def refresh(self) -> Sweep:
        self._update(self.client.sweep(self.id))
        return self

    def wait(self, timeout: float | None = None, progress: bool = True, *,
             console=None, poll: float = POLL_SECONDS) -> Sweep:
        """Poll until the sweep is finished and return it (a failed or cancelled sweep is
        returned, not raised). TimeoutError after ``timeout`` seconds."""
        def fetch():
            self.refresh()
            done, total, detail = sweep_view.progress(self.to_dict())
            return self, done, total, detail, self.finished

        return follow(f"sweep {self.id}", fetch, timeout=timeout, show=progress,
                      console=console, poll=poll)

    def cancel(self) -> Sweep:
        self._update(self.client.cancel_sweep(self.id))
        return self

    def promote(self, alias: str) -> Promotion:
        return self.client.promote(self.id, alias)

    def importances(self) -> dict:
        """Which searched parameter mattered (GET /sweeps/{id}/importances)."""
        return self.client.sweep_importances(self.id)

    def plot(self, top: int = 5):
        """The searched metric against the first two parameters (log axes for loguniform
        ranges) and the per-epoch curves of the ``top`` trials; returns the Figure."""
        from nnq.plots import sweep_figure

        if self.trials is None:
            self.refresh()
        ranked = [t for t in self.trials or [] if t.job_id is not None][:top]
        curves = {t.index: self.client.metrics(t.job_id) for t in ranked}
        return sweep_figure(self, curves)


class Promotion(Resource):
    alias: str
    model_id: int
    sweep_id: int
    trial: Trial
    updated_at: dt.datetime


# --- models -------------------------------------------------------------------------------

class Tensor(BaseModel):
    name: str
    role: str
    dtype: str
    shape: list[int]
    nbytes: int
    sha256: str


class Model(Resource):
    """A stored model (GET /models/{ref}); from a list, ``layers``, ``data_fingerprint`` and
    ``tensors`` are None until ``refresh()``."""

    id: int
    job_id: int | None
    name: str
    input_shape: list[int]
    num_classes: int
    dtype: str
    metrics: dict[str, Any]
    aliases: list[str]
    created_at: dt.datetime
    layers: list[dict[str, Any]] | None = None
    data_fingerprint: str | None = None
    tensors: list[Tensor] | None = None

    def _summary(self) -> list[tuple[str, Any]]:
        return [("id", self.id), ("name", self.name), ("job_id", self.job_id),
                ("input_shape", self.input_shape), ("test_acc", self.metrics.get("test_acc")),
                ("aliases", self.aliases)]

    def refresh(self) -> Model:
        self._update(self.client.model(str(self.id)))
        return self

    def predict(self, x, *, batch_size: int | None = None):
        return self.client.predict(str(self.id), x, batch_size=batch_size)

    def download_state(self) -> dict:
        return self.client.download_state(str(self.id))

    def set_alias(self, name: str) -> Alias:
        alias = self.client.set_alias(name, self.id)
        if name not in self.aliases:
            self.aliases.append(name)
        return alias


class Alias(Resource):
    name: str
    model_id: int
    updated_at: dt.datetime


class Prediction(BaseModel):
    model_id: int
    labels: list[int]
    probabilities: list[list[float]]


class Health(Resource):
    status: str
    db: bool
    broker: bool
    workers: bool
    worker_count: int


# --- lineage, reproduction ----------------------------------------------------------------

class AttemptRecord(BaseModel):
    attempt: int
    worker: str
    host: str
    started_at: str | None
    ended_at: str | None
    resumed_from_epoch: int
    outcome: str | None


class RunLineage(BaseModel):
    job_id: int | None
    sweep_id: int | None
    trial_index: int | None
    attempts: list[AttemptRecord]
    wall_seconds: float | None
    train_seconds: float | None


class TensorDifference(BaseModel):
    name: str
    original_sha256: str | None
    reproduced_sha256: str | None
    max_abs_diff: float | None
    note: str | None


class ConditionDifference(BaseModel):
    condition: str
    original: Any
    reproduced: Any


class Reproduction(Resource):
    """A re-training of ``original_model_id`` (POST /models/{ref}/reproduce): ``verdict`` is
    ``pending`` until its job stores ``model_id``, then ``identical`` or ``differs`` (with
    ``tensors`` and ``conditions``), or ``failed`` when the job ended without a model."""

    id: int
    original_model_id: int
    job_id: int
    model_id: int | None
    verdict: str
    tensors: list[TensorDifference]
    conditions: list[ConditionDifference]
    error: str | None
    created_at: dt.datetime
    finished_at: dt.datetime | None

    @property
    def finished(self) -> bool:
        return self.verdict != "pending"

    def _summary(self) -> list[tuple[str, Any]]:
        return [("id", self.id), ("original_model_id", self.original_model_id),
                ("job_id", self.job_id), ("model_id", self.model_id),
                ("verdict", self.verdict), ("differing_tensors", len(self.tensors))]

    def refresh(self) -> Reproduction:
        lineage = self.client.lineage(self.original_model_id)
        self._update(next(r for r in lineage.reproductions if r.id == self.id))
        return self

    def job(self) -> Job:
        return self.client.job(self.job_id)

    def wait(self, timeout: float | None = None, progress: bool = True, *,
             console=None, poll: float = POLL_SECONDS) -> Reproduction:
        """Follow the reproduction's job until it ends, then return the verdict (stored in
        the job's last transaction)."""
        self.job().wait(timeout=timeout, progress=progress, console=console, poll=poll)
        return self.refresh()


class OnnxInfo(BaseModel):
    input_name: str
    input_shape: list[int | str]
    output_name: str
    output_shape: list[int | str]
    dtype: str
    opset: int


class Lineage(Resource):
    """Where a model came from (GET /models/{ref}/lineage): spec, seeds, data hashes,
    environment, the run and its attempts, and every reproduction with its verdict."""

    model_id: int
    source: str
    recorded: bool
    spec: dict[str, Any] | None
    expanded_spec: dict[str, Any] | None
    seeds: dict[str, Any] | None
    data: dict[str, Any]
    environment: dict[str, Any] | None
    run: RunLineage
    verdict: str | None
    reproductions: list[Reproduction]
    onnx: OnnxInfo

    def bind(self, client):
        for reproduction in self.reproductions:
            reproduction.bind(client)
        return super().bind(client)

    def _summary(self) -> list[tuple[str, Any]]:
        return [("model_id", self.model_id), ("source", self.source),
                ("dataset", self.data.get("dataset")), ("job_id", self.run.job_id),
                ("attempts", len(self.run.attempts)), ("verdict", self.verdict)]
