"""The one settings object: NNQ_* variables, read when asked, with their defaults."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.app import create_app
from service.settings import DEFAULT_BROKER_URL, DEFAULT_DATABASE_URL, settings


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("DATABASE_URL", "BROKER_URL", "API_TOKEN", "DATA_DIR", "LEASE_SECONDS",
                 "MAX_ATTEMPTS", "VISIBILITY_TIMEOUT", "REQUEUE_AFTER_SECONDS"):
        monkeypatch.delenv(f"NNQ_{name}", raising=False)
    return monkeypatch


def test_defaults(clean_env):
    s = settings()
    assert (s.database_url, s.broker_url, s.api_token, s.data_dir) == (
        DEFAULT_DATABASE_URL, DEFAULT_BROKER_URL, None, None)
    assert (s.lease_seconds, s.max_attempts, s.visibility_timeout, s.requeue_after_seconds) == (
        60.0, 3, 3600, 300.0)


def test_the_environment_is_read_at_call_time_and_empty_means_unset(clean_env):
    clean_env.setenv("NNQ_DATABASE_URL", "postgres://u@db/nnq")
    clean_env.setenv("NNQ_MAX_ATTEMPTS", "5")
    clean_env.setenv("NNQ_API_TOKEN", "")
    s = settings()
    assert s.database_url == "postgresql+psycopg://u@db/nnq"
    assert (s.max_attempts, s.api_token) == (5, None)


def test_a_bad_value_names_its_field(clean_env):
    clean_env.setenv("NNQ_LEASE_SECONDS", "soon")
    with pytest.raises(ValidationError, match="lease_seconds"):
        settings()


def test_the_app_takes_its_config_from_the_settings(clean_env, tmp_path):
    clean_env.setenv("NNQ_API_TOKEN", "s3cret")
    clean_env.setenv("NNQ_BROKER_URL", "redis://broker:6379/3")
    app = create_app({"NNQ_DATABASE_URL": f"sqlite:///{tmp_path / 'nnq.db'}"})
    assert app.config["NNQ_API_TOKEN"] == "s3cret"
    assert app.config["NNQ_BROKER_URL"] == "redis://broker:6379/3"
