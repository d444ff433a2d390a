"""Files a user hands to a command (job specs, sweep requests, samples to classify): read and
checked before the client sends them, or a clear error line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nnq.terminal import fail

PREDICT_SUFFIXES = (".json", ".npy", ".png")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise fail(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise fail(f"{path}: not valid JSON ({exc})") from None


def predict_file(path: Path) -> Path:
    """FILE, once it exists and is a kind `Client.predict` sends (.json, .npy, .png)."""
    if not path.is_file():
        raise fail(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in PREDICT_SUFFIXES:
        raise fail(f"{path}: expected a .json, .npy or .png file")
    if suffix == ".json":
        read_json(path)
    return path
