"""The one settings object: every ``NNQ_*`` variable the API, workers, Alembic and the local
stack read, with its default.

``settings()`` reads the environment on each call, because worker subprocesses and tests
set variables after import. Empty variables count as unset. Needs only pydantic-settings,
so ``service.db`` and the CLI can import it without Flask.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "NNQ_"
DEFAULT_DATABASE_URL = "sqlite:///var/nnq.db"
DEFAULT_BROKER_URL = "redis://localhost:6379/0"
_POSTGRES_PREFIXES = ("postgresql://", "postgres://")
_PSYCOPG_PREFIX = "postgresql+psycopg://"


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
    # Redis returns an unacked message after this long: longer than any epoch, because the
    # reconciler re-sends a dead worker's job sooner.
    visibility_timeout: int = Field(default=3600, gt=0)
    # The reconciler re-sends a queued job nobody touched for this long.
    requeue_after_seconds: float = Field(default=300.0, gt=0)

    @field_validator("database_url")
    @classmethod
    def _for_installed_drivers(cls, url: str) -> str:
        return normalize_url(url)


def settings() -> Settings:
    """The settings as the environment says now."""
    return Settings()
