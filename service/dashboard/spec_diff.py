"""Which spec fields differ between compared jobs: the table under the compare charts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ABSENT = object()


def flatten(spec: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted paths to leaf values (``train.optimizer.lr``); lists stay whole values."""
    out: dict[str, Any] = {}
    for key, value in spec.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{path}."))
        else:
            out[path] = value
    return out


def differing(specs: list[Mapping[str, Any]]) -> list[tuple[str, list[Any]]]:
    """``(path, [value per spec])`` for every path whose values are not all equal; a spec
    without the path shows None. Paths in first-seen order."""
    flat = [flatten(spec) for spec in specs]
    paths = list(dict.fromkeys(path for f in flat for path in f))
    rows = []
    for path in paths:
        values = [f.get(path, ABSENT) for f in flat]
        if any(v != values[0] for v in values[1:]):
            rows.append((path, [None if v is ABSENT else v for v in values]))
    return rows
