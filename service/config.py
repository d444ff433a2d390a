"""Service settings read from the environment, overridable per app for tests."""

from __future__ import annotations

import os

from service.db.engine import database_url

DEFAULT_BROKER_URL = "redis://localhost:6379/0"
MAX_BODY_BYTES = 16 * 1024 * 1024  # an .npy of 1000 float64 samples is ~6 MiB


def from_env() -> dict:
    """The NNQ_* variables as Flask config keys; unset optional ones are None."""
    return {
        "NNQ_DATABASE_URL": database_url(),
        "NNQ_BROKER_URL": os.environ.get("NNQ_BROKER_URL", DEFAULT_BROKER_URL),
        "NNQ_API_TOKEN": os.environ.get("NNQ_API_TOKEN") or None,
        "NNQ_DATA_DIR": os.environ.get("NNQ_DATA_DIR") or None,
        "MAX_CONTENT_LENGTH": MAX_BODY_BYTES,
    }
