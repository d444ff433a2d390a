"""What a sweep's users read the next morning: which parameter mattered (Optuna's PED-ANOVA
importance evaluator over the succeeded trials), the optimization history (each succeeded
trial's metric by index and the best so far) and the parallel coordinates (each succeeded
trial's parameters with its metric). Plain data for the JSON API and the PNGs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna
from optuna.importance import PedAnovaImportanceEvaluator
from optuna.trial import TrialState

from service.sweeps.ranking import TrialResult
from service.sweeps.study import TrialRecord, records, study_name, study_of

MIN_TRIALS = 2  # succeeded trials the importance evaluator needs
EVALUATOR = PedAnovaImportanceEvaluator


def _succeeded(results: list[TrialResult], metric: str) -> list[TrialRecord]:
    return [r for r in records(results, metric) if r.state == TrialState.COMPLETE]


def importances(space: Mapping[str, Any], results: list[TrialResult], metric: str,
                sweep_id: int | None = None) -> dict[str, Any]:
    """``{"evaluator", "trials", "importances": [{"param", "importance"}] best first,
    "note"}``; importances sum to 1, the list is empty (and ``note`` says why) while fewer
    than MIN_TRIALS trials succeeded."""
    done = _succeeded(results, metric)
    out = {"evaluator": EVALUATOR.__name__, "trials": len(done), "importances": [],
           "note": None}
    if len(done) < MIN_TRIALS:
        out["note"] = (f"importances need at least {MIN_TRIALS} succeeded trials; "
                       f"{len(done)} so far")
        return out
    study = study_of(study_name(sweep_id), space, done)
    found = optuna.importance.get_param_importances(study, evaluator=EVALUATOR())
    out["importances"] = [{"param": param, "importance": float(value)}
                          for param, value in found.items()]
    return out


def ordered_paths(space: Mapping[str, Any], found: Mapping[str, Any]) -> list[str]:
    """The space's paths, most important first (the request's order where unknown)."""
    rank = {item["param"]: i for i, item in enumerate(found.get("importances") or [])}
    return sorted(space, key=lambda path: rank.get(path, len(rank)))


def history(results: list[TrialResult], metric: str) -> list[dict[str, Any]]:
    """Each succeeded trial by index: ``{"index", "value", "best"}`` (the best so far)."""
    points, best = [], None
    for record in _succeeded(results, metric):
        best = record.value if best is None else max(best, record.value)
        points.append({"index": record.index, "value": record.value, "best": best})
    return points


def parallel_coordinates(space: Mapping[str, Any], results: list[TrialResult],
                         metric: str) -> dict[str, Any]:
    """``{"params": [paths], "trials": [{"index", "value", "params"}]}`` of succeeded trials."""
    trials = [{"index": r.index, "value": r.value,
               "params": {path: r.params.get(path) for path in space}}
              for r in _succeeded(results, metric)]
    return {"params": list(space), "trials": trials}
