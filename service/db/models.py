"""SQLAlchemy 2 typed models: the tables of docs/contracts.md.

The schema is made only by Alembic (migrations/); these classes are what the
migration head must equal. Timestamps are naive UTC (``utcnow()``) on both
SQLite and PostgreSQL, so lease comparisons are plain and portable.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from nncore.training import METRIC_KEYS
from nnq.status import JobStatus, SweepStatus

TENSOR_ROLES = ("param", "buffer")
# How an attempt ends when its worker stopped renewing the lease (else: the job's status).
ATTEMPT_LOST = "lost"
ATTEMPT_OUTCOMES = (*JobStatus, ATTEMPT_LOST)
MAX_ID = 2**31 - 1  # ids are 32-bit integer columns; larger ones cannot exist
# The columns of epoch_metrics besides job and epoch: what nncore reports per epoch.
METRIC_FIELDS = tuple(key for key in METRIC_KEYS if key != "epoch")  # epoch_metrics columns

# Deterministic constraint names, so batch migrations on SQLite can find them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Naive UTC now: the one clock every row and lease comparison uses."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _in(column: str, values: Iterable[str]) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        dt.datetime: DateTime(),
        bytes: LargeBinary,
    }


class Job(Base):
    """One training run; the row is the truth, a queue message only carries its id.

    ``model_id`` is a plain copy of ``models.job_id``'s inverse and ``sweep_id`` a plain
    integer like ``sweeps.best_job_id`` (no FKs, to avoid cycles between the tables).
    """

    __tablename__ = "jobs"
    __table_args__ = (CheckConstraint(_in("status", JobStatus), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED, index=True)
    spec: Mapped[dict[str, Any]]
    device: Mapped[str] = mapped_column(String(16), default="cpu")
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=3)
    error: Mapped[str | None] = mapped_column(Text)
    epoch: Mapped[int] = mapped_column(default=0)
    iteration: Mapped[int] = mapped_column(default=0)
    total_iterations: Mapped[int] = mapped_column(default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[dt.datetime | None]
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    sweep_id: Mapped[int | None] = mapped_column(Integer, index=True)
    model_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    metrics: Mapped[list[EpochMetric]] = relationship(
        back_populates="job", order_by="EpochMetric.epoch", cascade="all, delete-orphan",
        passive_deletes=True)

    @property
    def is_terminal(self) -> bool:
        return self.status in JobStatus.FINISHED


class EpochMetric(Base):
    """One row per finished epoch: what the curves and sweeps read."""

    __tablename__ = "epoch_metrics"
    __table_args__ = (UniqueConstraint("job_id", "epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    epoch: Mapped[int]
    train_loss: Mapped[float | None] = mapped_column(Float)
    train_acc: Mapped[float | None] = mapped_column(Float)
    val_acc: Mapped[float | None] = mapped_column(Float)
    test_acc: Mapped[float | None] = mapped_column(Float)
    seconds: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    job: Mapped[Job] = relationship(back_populates="metrics")


class IterationLoss(Base):
    """One kept point of the per-iteration loss curve (nncore keeps every ``loss_stride``-th
    iteration and each epoch's last); written with its epoch's metrics row."""

    __tablename__ = "iteration_losses"
    __table_args__ = (UniqueConstraint("job_id", "iteration"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    iteration: Mapped[int]
    epoch: Mapped[int]
    loss: Mapped[float | None] = mapped_column(Float)


class ActivationStat(Base):
    """One layer's eval-mode output on the probe batch at the end of one epoch: the lecture's
    per-layer histogram, with its mean and std."""

    __tablename__ = "activation_stats"
    __table_args__ = (UniqueConstraint("job_id", "epoch", "layer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    epoch: Mapped[int]
    layer: Mapped[int]
    name: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(32))
    probe_size: Mapped[int]
    mean: Mapped[float | None] = mapped_column(Float)
    std: Mapped[float | None] = mapped_column(Float)
    edges: Mapped[list[Any]]
    counts: Mapped[list[Any]]


class JobAttempt(Base):
    """One claim of a job by a worker: who, from which epoch, and how it ended.

    ``outcome`` is the job status the attempt ended with, ``lost`` when its worker stopped
    renewing the lease, NULL while it runs.
    """

    __tablename__ = "job_attempts"
    __table_args__ = (
        UniqueConstraint("job_id", "attempt"),
        CheckConstraint(_in("outcome", ATTEMPT_OUTCOMES), name="outcome"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int]
    worker: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[dt.datetime | None]
    resumed_from_epoch: Mapped[int] = mapped_column(default=0)
    outcome: Mapped[str | None] = mapped_column(String(16))


class Checkpoint(Base):
    """The latest checkpoint of a job (.npz bytes); a resumed run starts from it."""

    __tablename__ = "checkpoints"

    job_id: Mapped[int] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    epoch: Mapped[int]
    state: Mapped[bytes]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Model(Base):
    """A trained network: expanded layers + metadata; tensors live in model_tensors."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    input_shape: Mapped[list[Any]]
    num_classes: Mapped[int]
    dtype: Mapped[str] = mapped_column(String(16))
    layers: Mapped[list[Any]]
    metrics: Mapped[dict[str, Any]]
    data_fingerprint: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    tensors: Mapped[list[ModelTensor]] = relationship(
        back_populates="model", order_by="ModelTensor.id", cascade="all, delete-orphan",
        passive_deletes=True)


class ModelTensor(Base):
    """One stored tensor: raw little-endian C-order bytes plus what checks them."""

    __tablename__ = "model_tensors"
    __table_args__ = (
        UniqueConstraint("model_id", "name"),
        CheckConstraint(_in("role", TENSOR_ROLES), name="role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(8))
    dtype: Mapped[str] = mapped_column(String(16))
    shape: Mapped[list[Any]]
    nbytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes]

    model: Mapped[Model] = relationship(back_populates="tensors")


class Alias(Base):
    """A movable name (``production``, ``best-fashion``) for a model."""

    __tablename__ = "aliases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Sweep(Base):
    """A hyperparameter search: the validated request and its trials, all made at once.

    ``best_job_id`` is a plain integer like ``jobs.sweep_id`` (no FK cycle between the
    tables); the scheduler writes it when the sweep finishes.
    """

    __tablename__ = "sweeps"
    __table_args__ = (CheckConstraint(_in("status", SweepStatus), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=SweepStatus.QUEUED, index=True)
    request: Mapped[dict[str, Any]]
    metric: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    best_job_id: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    finished_at: Mapped[dt.datetime | None]

    trials: Mapped[list[SweepTrial]] = relationship(
        back_populates="sweep", order_by="SweepTrial.index", cascade="all, delete-orphan",
        passive_deletes=True)

    @property
    def is_terminal(self) -> bool:
        return self.status in SweepStatus.FINISHED


class SweepTrial(Base):
    """One generated point of a sweep; ``job_id`` is set once, when its job is created.

    Rows exist from the start, so "every trial runs exactly once" is a property of
    this table (``job_id`` unique, written only while NULL), not of a scheduler's memory.
    """

    __tablename__ = "sweep_trials"
    __table_args__ = (UniqueConstraint("sweep_id", "index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sweep_id: Mapped[int] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"))
    index: Mapped[int]
    params: Mapped[dict[str, Any]]
    spec: Mapped[dict[str, Any]]
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    sweep: Mapped[Sweep] = relationship(back_populates="trials")


# Where a lineage record came from: a job the workers trained, or tensors imported from outside.
LINEAGE_SOURCES = ("trained", "imported")
# A reproduction's stored verdict; "failed" is not stored: a job that ended without a model.
VERDICT_PENDING, VERDICT_IDENTICAL, VERDICT_DIFFERS = "pending", "identical", "differs"
VERDICTS = (VERDICT_PENDING, VERDICT_IDENTICAL, VERDICT_DIFFERS)


class ModelLineage(Base):
    """Where a model came from, recorded once when it is stored: the spec as submitted and
    expanded, every seed, the data (file and array sha256), the software and BLAS it ran on,
    the job, sweep and trial, and each attempt. JSON sections, since what a run can record
    grows with nncore; ``job_id`` and ``sweep_id`` are plain copies that outlive the job row."""

    __tablename__ = "model_lineage"
    __table_args__ = (CheckConstraint(_in("source", LINEAGE_SOURCES), name="source"),)

    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]]
    expanded_spec: Mapped[dict[str, Any]]
    seeds: Mapped[dict[str, Any]]
    data: Mapped[dict[str, Any]]
    environment: Mapped[dict[str, Any] | None]
    job_id: Mapped[int | None] = mapped_column(Integer)
    sweep_id: Mapped[int | None] = mapped_column(Integer)
    trial_index: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[list[Any]]
    wall_seconds: Mapped[float | None] = mapped_column(Float)
    train_seconds: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Reproduction(Base):
    """A re-training of ``original_model_id`` from its recorded spec and seeds by ``job_id``,
    and the verdict once that job stored ``model_id``: ``identical`` when every tensor's sha256
    matches, else ``differs`` with the tensors (max absolute difference) and the recorded
    conditions (versions, BLAS threads, device, data files) that differ."""

    __tablename__ = "reproductions"
    __table_args__ = (CheckConstraint(_in("verdict", VERDICTS), name="verdict"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    original_model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), unique=True)
    model_id: Mapped[int | None] = mapped_column(
        ForeignKey("models.id", ondelete="SET NULL"), index=True)
    verdict: Mapped[str] = mapped_column(String(16), default=VERDICT_PENDING)
    tensors: Mapped[list[Any]] = mapped_column(default=list)
    conditions: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
