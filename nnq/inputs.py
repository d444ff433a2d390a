"""Files a user hands to a command (job specs, sweep requests, samples to classify): read and
shaped for the request, or a clear error line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nnq.terminal import fail


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise fail(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise fail(f"{path}: not valid JSON ({exc})") from None


def predict_request(path: Path) -> dict:
    """httpx keyword arguments that send FILE the way the predict endpoint takes it."""
    if not path.is_file():
        raise fail(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".json":
        body = read_json(path)
        return {"json": body if isinstance(body, dict) else {"inputs": body}}
    if suffix == ".npy":
        return {"content": path.read_bytes(),
                "headers": {"Content-Type": "application/octet-stream"}}
    if suffix == ".png":
        return {"files": {"image": (path.name, path.read_bytes(), "image/png")}}
    raise fail(f"{path}: expected a .json, .npy or .png file")
