"""A sweep's trials as an Optuna study, rebuilt from nnq's rows for every question.

No study outlives a call and none is stored: the sweep tables stay the plan, so any worker or
the API can ask for the next trial, or whether to prune one, after any restart. A trial's
number in the study is its index in the sweep (a trial that never got a job below the asked
index stands in as a failed one), its value the metric at its last recorded epoch (what the
ranking uses), its intermediate values the metric per epoch. The metric is maximised.

Values cross in both directions here: ranges map to Optuna's float and int distributions,
listed values (any JSON) to a categorical one over their JSON text. A sampler's notes on a
trial (CMA-ES's generation) are kept with the trial's params under ``SAMPLER_KEY``.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState, create_trial

from nnq.status import JobStatus
from service.sweeps import space as sp
from service.sweeps.ranking import TrialResult
from service.sweeps.samplers import upfront_sampler

DIRECTION = "maximize"
SAMPLER_KEY = "~sampler"  # under a trial's params: its sampler's notes (no spec path has a ~)
NOT_STORED = ":optimizer"  # CMA-ES's pickled optimizer: replayed instead (service.sweeps.samplers)
STATES = {JobStatus.SUCCEEDED: TrialState.COMPLETE, JobStatus.PRUNED: TrialState.PRUNED,
          JobStatus.FAILED: TrialState.FAIL, JobStatus.CANCELLED: TrialState.FAIL,
          JobStatus.QUEUED: TrialState.RUNNING, JobStatus.RUNNING: TrialState.RUNNING}


def study_name(sweep_id: int | None) -> str:
    """Stable per sweep: Hyperband assigns brackets from the name and the trial number."""
    return f"nnq-sweep-{sweep_id}"


# --- values -------------------------------------------------------------------------------

def distribution(dist: Mapping[str, Any]) -> BaseDistribution:
    """The Optuna distribution of one checked space entry."""
    kind = sp.kind_of(dist)
    if kind in sp.DISCRETE:
        return CategoricalDistribution([sp.choice_key(v) for v in sp.unique_values(
            sp.arg_of(dist))])
    lo, hi = sp.arg_of(dist)
    step = sp.step_of(dist)
    if kind == "loguniform":
        return FloatDistribution(float(lo), float(hi), log=True)
    if kind == "uniform":
        return FloatDistribution(float(lo), float(hi), step=None if step is None else float(step))
    if kind == "int_log":
        return IntDistribution(int(lo), int(hi), log=True)
    return IntDistribution(int(lo), int(hi), step=int(step or 1))


def distributions(space: Mapping[str, Any]) -> dict[str, BaseDistribution]:
    return {path: distribution(dist) for path, dist in space.items()}


def to_optuna(dist: Mapping[str, Any], value: Any) -> Any:
    """A stored trial value as Optuna's params hold it (a listed value as its JSON text), or
    None when the entry cannot hold it.

    Numbers are clamped into the range: values stored by older versions could sit a rounding
    error outside it.
    """
    kind = sp.kind_of(dist)
    if kind in sp.DISCRETE:
        key = sp.choice_key(value)
        return key if key in {sp.choice_key(v) for v in sp.arg_of(dist)} else None
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return None
    lo, hi = sp.arg_of(dist)
    clamped = min(max(value, lo), hi)
    return round(clamped) if kind in sp.INT_RANGES else float(clamped)


def from_optuna(dist: Mapping[str, Any], value: Any) -> Any:
    """Optuna's value as the plain JSON value a spec takes."""
    kind = sp.kind_of(dist)
    if kind in sp.DISCRETE:
        by_key = {sp.choice_key(v): v for v in reversed(sp.arg_of(dist))}
        return copy.deepcopy(by_key[value])
    if kind in sp.INT_RANGES:
        return int(value)
    if sp.step_of(dist) is not None:
        return round(float(value), sp.STEP_DECIMALS)
    return float(value)


def split_params(stored: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A trial row's params: (the spec values, the sampler's notes)."""
    params = {k: v for k, v in stored.items() if k != SAMPLER_KEY}
    return params, dict(stored.get(SAMPLER_KEY) or {})


def join_params(params: Mapping[str, Any], notes: Mapping[str, Any]) -> dict[str, Any]:
    return {**params, **({SAMPLER_KEY: dict(notes)} if notes else {})}


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def kept_notes(system_attrs: Mapping[str, Any]) -> dict[str, Any]:
    """What of a sampler's attributes on a trial is stored with it (plain JSON, no pickle)."""
    return {k: v for k, v in system_attrs.items() if NOT_STORED not in k and _jsonable(v)}


# --- trials -------------------------------------------------------------------------------

@dataclass
class TrialRecord:
    """One trial as Optuna sees it; ``curve`` maps epoch -> metric (NaN where missing)."""

    index: int
    state: TrialState
    value: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    curve: dict[int, float] = field(default_factory=dict)


def _metric_curve(result: TrialResult, metric: str) -> dict[int, float]:
    return {int(row["epoch"]): math.nan if row.get(metric) is None else float(row[metric])
            for row in result.curve}


def records(results: list[TrialResult], metric: str) -> list[TrialRecord]:
    """The trials that have a job, by index."""
    out = []
    for result in results:
        if result.job_id is None:
            continue
        state = STATES.get(result.status, TrialState.FAIL)
        value = result.score(metric)
        if state == TrialState.COMPLETE and value is None:
            state = TrialState.FAIL
        out.append(TrialRecord(index=result.index, state=state,
                               value=value if state == TrialState.COMPLETE else None,
                               params=dict(result.params), notes=dict(result.sampler_attrs),
                               curve=_metric_curve(result, metric)))
    return sorted(out, key=lambda r: r.index)


def frozen(record: TrialRecord, space: Mapping[str, Any] | None, *,
           intermediate: bool = True) -> FrozenTrial:
    """The record as an Optuna trial; with ``space``, its params too (a trial whose values the
    space cannot hold becomes a failed trial without params)."""
    state, params, dists = record.state, {}, {}
    if space is not None:
        internal = {path: to_optuna(dist, record.params.get(path))
                    for path, dist in space.items()}
        if any(v is None for v in internal.values()):
            state = TrialState.FAIL
        else:
            dists, params = distributions(space), internal
    return create_trial(
        state=state, value=record.value if state == TrialState.COMPLETE else None,
        params=params, distributions=dists if params else {}, system_attrs=dict(record.notes),
        intermediate_values=dict(record.curve) if intermediate else None)


def placeholder(index: int) -> TrialRecord:
    """A trial below the asked index that never got a job: failed, so numbers stay indices."""
    return TrialRecord(index=index, state=TrialState.FAIL)


def numbered(found: list[TrialRecord], upto: int | None = None) -> list[TrialRecord]:
    """``found`` with placeholders filling every index below ``upto`` (or the last found)."""
    by_index = {r.index: r for r in found}
    end = upto if upto is not None else (max(by_index) + 1 if by_index else 0)
    return [by_index.get(i, placeholder(i)) for i in range(end)]


def new_study(name: str, sampler: optuna.samplers.BaseSampler | None = None,
              pruner: optuna.pruners.BasePruner | None = None
              ) -> tuple[optuna.Study, optuna.storages.InMemoryStorage]:
    """An empty in-memory study and its storage (whose public methods replay trials)."""
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name=name, direction=DIRECTION,
                                sampler=sampler, pruner=pruner)
    return study, storage


def study_of(name: str, space: Mapping[str, Any] | None, found: list[TrialRecord], *,
             sampler: optuna.samplers.BaseSampler | None = None,
             upto: int | None = None) -> optuna.Study:
    """A study holding ``found`` (numbered by index) in their final states."""
    study, _ = new_study(name, sampler)
    for record in numbered(found, upto):
        study.add_trial(frozen(record, space))
    return study


def ask(study: optuna.Study, space: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The sampler's next trial: (params as spec values, the notes to keep with them)."""
    trial = study.ask(distributions(space))
    asked = study.get_trials(deepcopy=False)[trial.number]
    return decode(space, trial.params), kept_notes(asked.system_attrs)


def draw_upfront(space: Mapping[str, Any], strategy: str, seed: int, count: int
                 ) -> list[dict[str, Any]]:
    """Every trial of a ``random``, ``grid`` or ``qmc`` sweep, asked in order of one study."""
    if strategy == "grid":
        values = {path: sp.grid_values(dist) or [] for path, dist in space.items()}
        keys = {path: [sp.choice_key(v) for v in vs] for path, vs in values.items()}
        as_choices = {path: {"choice": vs} for path, vs in values.items()}
        study, _ = new_study(study_name(None), upfront_sampler(strategy, seed, keys))
        asked = [study.ask({p: CategoricalDistribution(k) for p, k in keys.items()})
                 for _ in range(count)]
        return [{p: from_optuna(as_choices[p], t.params[p]) for p in space} for t in asked]
    study, _ = new_study(study_name(None), upfront_sampler(strategy, seed))
    dists = distributions(space)
    return [decode(space, study.ask(dists).params) for _ in range(count)]


def decode(space: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's Optuna params as spec values."""
    return {path: from_optuna(dist, values[path]) for path, dist in space.items()}
