"""The one settings object: every ``NNQ_*`` variable the API, workers, Alembic and the local
stack read, with its default.

``settings()`` reads the environment on each call, because worker subprocesses and tests
set variables after import (and parses it again only when an ``NNQ_*`` variable changed). Empty variables count as unset. Needs only pydantic-settings,
so ``service.db`` and the CLI can import it without Flask.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "NNQ_"
DEFAULT_DATABASE_URL = "sqlite:///var/nnq.db"
DEFAULT_BROKER_URL = "redis://localhost:6379/0"
_POSTGRES_PREFIXES = ("postgresql://", "postgres://")
_PSYCOPG_PREFIX = "postgresql+psycopg://"
PARSED_ENVIRONMENTS = 8  # tests switch between a few; a process normally has one


def normalize_url(url: str) -> str:
    """Map a plain ``postgresql://`` URL to psycopg 3 (SQLAlchemy's default is psycopg2)."""
    for prefix in _POSTGRES_PREFIXES:
        if url.startswith(prefix):
            return _PSYCOPG_PREFIX + url[len(prefix):]
    return url


class Settings(BaseSettings):
    """``NNQ_<FIELD>`` in the environment overrides each default."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True,
                                      extra="ignore", frozen=True)

    database_url: str = DEFAULT_DATABASE_URL
    broker_url: str = DEFAULT_BROKER_URL
    api_token: str | None = None
    data_dir: Path | None = None
    # A job's lease; the worker renews it while training.
    lease_seconds: float = Field(default=60.0, gt=0)
    # Attempts (first run and resumes) before a job fails.
    max_attempts: int = Field(default=3, ge=1)
    # Attempts that stored a newer checkpoint do not count against max_attempts; this caps
    # every claim of one job, progress or not (raised to max_attempts when lower).
    max_claims: int = Field(default=20, ge=1)
    # A running job whose training completed no iteration for this long is hung: its worker
    # stops renewing the lease, so the job moves to another worker (docs/design.md).
    stall_seconds: float = Field(default=600.0, gt=0)
    # A worker retries a database write that failed because the database was away or locked
    # (service.db.transient) for this long, with backoff, before it gives the attempt up.
    db_retry_seconds: float = Field(default=60.0, ge=0)
    # Redis returns an unacked message after this long: longer than any epoch, because the
    # reconciler re-sends a dead worker's job sooner.
    visibility_timeout: int = Field(default=3600, gt=0)
    # The reconciler re-sends a queued job nobody touched for this long.
    requeue_after_seconds: float = Field(default=300.0, gt=0)
    # A running job's one periodic write (lease, progress and the cancel flag read back)
    # comes this often, and at least three times per lease: what sets the database's load
    # per worker (docs/scale.md) and how soon a running job sees a cancel.
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    # A job writes its finished epochs (metrics rows, run records, checkpoint) at most this
    # often: the first epoch at once, the rest when this has passed or the run ends, so a
    # resumed job retrains at most this much. 0 writes every epoch; a large fleet sets ~30
    # (docs/scale.md).
    epoch_write_seconds: float = Field(default=0.0, ge=0)
    # An epoch write carries the job's checkpoint (megabytes) only when this long has passed
    # since the last one, counted from the job's start: 0 puts one in every epoch write. A
    # fleet sets ~300, bounding checkpoint traffic to workers x checkpoint size / 300 s; a
    # resumed job then retrains (and rewrites the rows of) the epochs since its checkpoint.
    checkpoint_seconds: float = Field(default=0.0, ge=0)
    # The API trusts a model it has loaded for this long before reading its row again
    # (stored models never change; this notices a database that was restored or reset).
    predict_recheck_seconds: float = Field(default=5.0, ge=0)
    # Queued jobs the API accepts before it answers 429: nnq has one API token, so this bounds
    # what all its holders (or, without a token, everyone) may have waiting at once.
    max_queued_per_token: int = Field(default=1000, ge=1)
    # How long a SQLite statement waits for another connection's write lock (milliseconds).
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)
    # A job whose estimated training memory (nncore.memory) is above this is refused with 422.
    max_job_memory_mb: int = Field(default=4096, ge=1)
    # Each job may grow its worker process by this much (RLIMIT_DATA); beyond it the job fails
    # as "out of memory" instead of taking the host down. 0 leaves workers unbounded.
    worker_memory_mb: int = Field(default=8192, ge=0)

    @field_validator("database_url")
    @classmethod
    def _for_installed_drivers(cls, url: str) -> str:
        return normalize_url(url)


def settings() -> Settings:
    """The settings as the environment says now.

    Parsing costs milliseconds and a worker asks several times per job, so each distinct
    set of ``NNQ_*`` variables is parsed once (the object is frozen, so sharing it is safe).
    """
    return _parsed(tuple(sorted((name, value) for name, value in os.environ.items()
                                if name.upper().startswith(ENV_PREFIX))))


@functools.lru_cache(maxsize=PARSED_ENVIRONMENTS)
def _parsed(_environment: tuple[tuple[str, str], ...]) -> Settings:
    return Settings()
