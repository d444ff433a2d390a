"""Search spaces: check each distribution, then generate every trial's parameters up front.

A space maps a dotted spec path to one distribution, a single-key object:
``{"loguniform": [lo, hi]}``, ``{"uniform": [lo, hi]}``, ``{"choice": [v, ...]}`` or
``{"grid": [v, ...]}``. ``random`` draws every trial from ``numpy.random.Generator(PCG64(seed))``
in the space's key order, so the same request always gives the same parameters; ``grid`` is
the cartesian product of the ``grid``/``choice`` values, the first path varying slowest.
Continuous draws are always floats; integers come only from ``choice``/``grid`` values.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

CONTINUOUS = ("loguniform", "uniform")
DISCRETE = ("choice", "grid")
KINDS = CONTINUOUS + DISCRETE


class SpaceError(ValueError):
    """A bad space; ``problems`` are (dotted path under ``space``, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{path}: {msg}" for path, msg in problems))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _range_problem(kind: str, bounds: Any) -> str | None:
    """Why ``bounds`` is not a usable [lo, hi] for ``kind``, or None."""
    if not isinstance(bounds, list) or len(bounds) != 2 or not all(map(_number, bounds)):
        return "expected [lo, hi], two finite numbers"
    lo, hi = bounds
    if lo >= hi:
        return f"empty range: lo ({lo}) must be below hi ({hi})"
    if kind == "loguniform" and lo <= 0:
        return f"a log scale needs positive bounds; got lo = {lo}"
    return None


def check_distribution(path: str, dist: Any) -> list[tuple[str, str]]:
    """Problems of one space entry, each at ``path`` or ``path.<kind>``."""
    if not isinstance(dist, dict) or len(dist) != 1 or next(iter(dist)) not in KINDS:
        return [(path, f"expected one of {{{', '.join(repr(k) + ': ...' for k in KINDS)}}}")]
    (kind, arg), = dist.items()
    where = f"{path}.{kind}"
    if kind in CONTINUOUS:
        problem = _range_problem(kind, arg)
        return [(where, problem)] if problem else []
    if not isinstance(arg, list) or not arg:
        return [(where, "expected a non-empty list of values")]
    return []


def check_space(space: Mapping[str, Any]) -> None:
    """Raise SpaceError naming every bad entry (paths relative to ``space``)."""
    if not space:
        raise SpaceError([("", "empty: name at least one spec path to search")])
    problems = [p for path, dist in space.items() for p in check_distribution(path, dist)]
    if problems:
        raise SpaceError(problems)


def grid_size(space: Mapping[str, Any]) -> int:
    """How many combinations ``grid`` enumerates (continuous entries are refused first)."""
    return math.prod(len(dist[next(iter(dist))]) for dist in space.values())


def continuous_paths(space: Mapping[str, Any]) -> list[str]:
    return [path for path, dist in space.items() if next(iter(dist)) in CONTINUOUS]


def _draw(rng: np.random.Generator, dist: Mapping[str, Any]) -> Any:
    (kind, arg), = dist.items()
    if kind in DISCRETE:
        return copy.deepcopy(arg[int(rng.integers(len(arg)))])
    lo, hi = float(arg[0]), float(arg[1])
    if kind == "uniform":
        return float(rng.uniform(lo, hi))
    value = float(np.exp(rng.uniform(math.log(lo), math.log(hi))))
    return min(max(value, lo), hi)  # exp(log(x)) may round a hair outside [lo, hi]


def random_params(space: Mapping[str, Any], seed: int, n: int) -> list[dict[str, Any]]:
    """``n`` seeded draws, each ``{path: value}`` in the space's key order."""
    rng = np.random.Generator(np.random.PCG64(seed))
    return [{path: _draw(rng, dist) for path, dist in space.items()} for _ in range(n)]


def grid_params(space: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every combination of the ``grid``/``choice`` values, in a fixed order."""
    paths = list(space)
    values = [dist[next(iter(dist))] for dist in space.values()]
    return [{path: copy.deepcopy(v) for path, v in zip(paths, combo, strict=True)}
            for combo in itertools.product(*values)]


def generate(space: Mapping[str, Any], strategy: str, seed: int, max_trials: int
             ) -> list[dict[str, Any]]:
    """The trials' parameters: ``max_trials`` random draws, or the whole grid."""
    if strategy == "grid":
        return grid_params(space)
    return random_params(space, seed, max_trials)


def set_path(document: dict, path: str, value: Any) -> bool:
    """Write ``value`` at dotted ``path`` in ``document`` (objects made as needed).

    False when the path runs through something that is not an object (a list, a number).
    """
    *parents, leaf = path.split(".")
    node = document
    for key in parents:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            return False
        node = child
    node[leaf] = copy.deepcopy(value)
    return True
