"""Search spaces: the syntax of one searched path, its checks, and where a value lands.

A space maps a dotted spec path (``train.optimizer.lr``, ``model.hidden.0`` for a list item)
to one distribution, an object with one kind key:

- ``{"loguniform": [lo, hi]}`` (both > 0), ``{"uniform": [lo, hi]}``: floats;
- ``{"int": [lo, hi]}``, ``{"int_log": [lo, hi]}`` (lo >= 1): whole numbers, both ends included;
- ``{"choice": [v, ...]}``, ``{"grid": [v, ...]}``: any JSON values.

``uniform`` and ``int`` take an optional ``"step"``: values are then ``lo + k * step`` and
``hi - lo`` must be a multiple of it. Drawing values is Optuna's work (service.sweeps.study);
this module only says what a request may ask for and which finite values a grid enumerates.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from typing import Any

FLOAT_RANGES = ("loguniform", "uniform")
INT_RANGES = ("int", "int_log")
RANGES = FLOAT_RANGES + INT_RANGES
LOG_RANGES = ("loguniform", "int_log")
DISCRETE = ("choice", "grid")
KINDS = RANGES + DISCRETE
STEP = "step"
STEPPED = ("uniform", "int")  # the kinds that take a step
STEP_TOLERANCE = 1e-9  # relative slack when checking that a float step divides the range
STEP_DECIMALS = 12  # stepped float values are rounded to this many decimals (0.1 * 3 -> 0.3)


class SpaceError(ValueError):
    """A bad space; ``problems`` are (dotted path under ``space``, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{path}: {msg}" for path, msg in problems))


def kind_of(dist: Mapping[str, Any]) -> str:
    """The distribution's kind key (whatever order the request wrote its keys in)."""
    return next(key for key in dist if key != STEP)


def arg_of(dist: Mapping[str, Any]) -> Any:
    """``[lo, hi]`` of a range, the value list of a choice or grid."""
    return dist[kind_of(dist)]


def step_of(dist: Mapping[str, Any]) -> float | int | None:
    return dist.get(STEP)


def choice_key(value: Any) -> str:
    """A listed value's identity as text: equal JSON values, equal keys."""
    return json.dumps(value, sort_keys=True)


def unique_values(values: list[Any]) -> list[Any]:
    """``values`` without repeats, first occurrence kept."""
    seen: dict[str, Any] = {}
    for value in values:
        seen.setdefault(choice_key(value), value)
    return list(seen.values())


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _range_problem(kind: str, bounds: Any) -> str | None:
    """Why ``bounds`` is not a usable [lo, hi] for ``kind``, or None."""
    if not isinstance(bounds, list) or len(bounds) != 2 or not all(map(_number, bounds)):
        return "expected [lo, hi], two finite numbers"
    lo, hi = bounds
    if kind in INT_RANGES and not all(map(_whole, bounds)):
        return "expected [lo, hi], two whole numbers"
    if lo >= hi:
        return f"empty range: lo ({lo}) must be below hi ({hi})"
    if kind == "loguniform" and lo <= 0:
        return f"a log scale needs positive bounds; got lo = {lo}"
    if kind == "int_log" and lo < 1:
        return f"a log scale of whole numbers starts at 1 or more; got lo = {lo}"
    return None


def _step_problem(kind: str, bounds: list, step: Any) -> str | None:
    """Why ``step`` does not fit the range, or None."""
    if kind not in STEPPED:
        return f"a step applies to {' and '.join(STEPPED)} ranges only"
    if kind == "int" and not _whole(step):
        return "expected a whole number"
    if not _number(step) or step <= 0:
        return "expected a positive number"
    lo, hi = bounds
    steps = (hi - lo) / step
    if abs(steps - round(steps)) > STEP_TOLERANCE * max(1.0, abs(steps)):
        return f"hi - lo ({hi - lo}) must be a multiple of the step ({step})"
    return None


def check_distribution(path: str, dist: Any) -> list[tuple[str, str]]:
    """Problems of one space entry, each at ``path``, ``path.<kind>`` or ``path.step``."""
    kinds = [key for key in dist if key in KINDS] if isinstance(dist, dict) else []
    unknown = [key for key in dist if key not in KINDS and key != STEP] \
        if isinstance(dist, dict) else []
    if len(kinds) != 1 or unknown:
        listed = ", ".join(repr(k) + ": ..." for k in KINDS)
        return [(path, f"expected one of {{{listed}}}, plus {STEP!r} for {' and '.join(STEPPED)}")]
    kind = kinds[0]
    arg = dist[kind]
    if kind in RANGES:
        problem = _range_problem(kind, arg)
        if problem:
            return [(f"{path}.{kind}", problem)]
        if STEP in dist:
            problem = _step_problem(kind, arg, dist[STEP])
            return [(f"{path}.{STEP}", problem)] if problem else []
        return []
    if STEP in dist:
        return [(f"{path}.{STEP}", f"a step applies to {' and '.join(STEPPED)} ranges only")]
    if not isinstance(arg, list) or not arg:
        return [(f"{path}.{kind}", "expected a non-empty list of values")]
    return []


def check_space(space: Mapping[str, Any]) -> None:
    """Raise SpaceError naming every bad entry (paths relative to ``space``)."""
    if not space:
        raise SpaceError([("", "empty: name at least one spec path to search")])
    problems = [p for path, dist in space.items() for p in check_distribution(path, dist)]
    if problems:
        raise SpaceError(problems)


def normalise(dist: Mapping[str, Any]) -> dict[str, Any]:
    """A checked entry with its kind key first and the step (if any) after it."""
    kind = kind_of(dist)
    step = step_of(dist)
    return {kind: copy.deepcopy(dist[kind]), **({STEP: step} if step is not None else {})}


def stepped_value(lo: float, k: int, step: float) -> float:
    """``lo + k * step`` without the float noise of the multiplication."""
    return round(lo + k * step, STEP_DECIMALS)


def grid_values(dist: Mapping[str, Any]) -> list[Any] | None:
    """The finite values a grid enumerates for this entry, or None for a continuous range."""
    kind = kind_of(dist)
    if kind in DISCRETE:
        return unique_values(arg_of(dist))
    lo, hi = arg_of(dist)
    step = step_of(dist)
    if kind == "int":
        return list(range(lo, hi + 1, step or 1))
    if kind == "uniform" and step is not None:
        return [stepped_value(lo, k, step) for k in range(round((hi - lo) / step) + 1)]
    return None


def continuous_paths(space: Mapping[str, Any]) -> list[str]:
    """Paths a grid cannot enumerate (float ranges without a step, log ranges)."""
    return [path for path, dist in space.items() if grid_values(dist) is None]


def categorical_paths(space: Mapping[str, Any]) -> list[str]:
    return [path for path, dist in space.items() if kind_of(dist) in DISCRETE]


def grid_size(space: Mapping[str, Any]) -> int:
    """How many combinations ``grid`` enumerates (continuous entries are refused first)."""
    return math.prod(len(grid_values(dist) or []) for dist in space.values())


def edge_values(dist: Mapping[str, Any]) -> list[Any]:
    """The values that bound what a sampler may choose: both ends of a range, every listed
    value. An adaptive sweep's trials are chosen later, so these are what can be checked
    against the spec when the sweep is accepted."""
    kind = kind_of(dist)
    if kind in DISCRETE:
        return list(arg_of(dist))
    lo, hi = arg_of(dist)
    return [lo, hi] if kind in INT_RANGES else [float(lo), float(hi)]


def _child(node: Any, key: str) -> tuple[bool, Any]:
    """(found, value) of ``key`` in an object, or of index ``key`` in a list."""
    if isinstance(node, dict):
        return True, node.setdefault(key, {})
    if isinstance(node, list) and key.isdigit() and int(key) < len(node):
        return True, node[int(key)]
    return False, None


def set_path(document: dict, path: str, value: Any) -> bool:
    """Write ``value`` at dotted ``path`` in ``document``; objects are made as needed and a
    numeric part indexes an existing list item (``model.hidden.0``).

    False when the path runs through a number or string, or past the end of a list.
    """
    *parents, leaf = path.split(".")
    node: Any = document
    for key in parents:
        found, node = _child(node, key)
        if not found or not isinstance(node, dict | list):
            return False
    if isinstance(node, dict):
        node[leaf] = copy.deepcopy(value)
        return True
    if isinstance(node, list) and leaf.isdigit() and int(leaf) < len(node):
        node[int(leaf)] = copy.deepcopy(value)
        return True
    return False
