"""A sweep request -> the normalised request and every trial's spec, or SweepInvalid.

Everything is checked before anything is stored: the request's fields (pydantic), the base
spec, each space entry, that every space path names a field the spec schema knows, that the
strategy can search the space, and the trials' specs with ``validate_spec``: every trial of a
``random``, ``grid`` or ``qmc`` sweep (drawn now), and for ``tpe``, ``cmaes`` and ``gp``,
whose trials are chosen when they start, every path at each end of its range and each of
its listed values. Problems carry dotted paths into the request
(``space.train.optimizer.lr.loguniform``, ``max_trials``), like the job API.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from nncore import SpecError
from nncore.errors import join_path
from nncore.schema import problems_from
from service.spec import JobSpec, validate_spec
from service.sweeps import space as sp
from service.sweeps.samplers import (
    ADAPTIVE,
    NUMERIC_ONLY,
    STRATEGIES,
    UPFRONT,
    unavailable,
)
from service.sweeps.study import draw_upfront

MAX_TRIALS = 200
DEFAULT_TRIALS = 20
MAX_PARALLELISM = 64
MAX_SPACE_PATHS = 32
MAX_EPOCH_OPTION = 200
MAX_REDUCTION_FACTOR = 100
METRICS = ("val_acc", "train_acc")
PRUNERS = ("none", "median", "percentile", "asha", "hyperband")
TRIAL_SUFFIX_ROOM = len("-t199")
NAME_MAX = 200 - TRIAL_SUFFIX_ROOM  # a trial's job name is f"{name}-t{index}", at most 200
HALVING = {"min_epochs": 1, "reduction_factor": 3}
PRUNER_DEFAULTS = {"none": {}, "median": {"warmup_epochs": 1, "min_trials": 3},
                   "percentile": {"percentile": 25.0, "warmup_epochs": 1, "min_trials": 3},
                   "asha": HALVING, "hyperband": HALVING}
# Each option and the pruners it applies to.
PRUNER_OPTIONS = {option: tuple(p for p, defaults in PRUNER_DEFAULTS.items() if option in defaults)
                  for option in ("warmup_epochs", "min_trials", "percentile", "min_epochs",
                                 "reduction_factor")}
TEST_METRIC_REFUSAL = (
    "selecting on test accuracy leaks the test set into the choice of hyperparameters, so "
    "the reported test accuracy would no longer estimate unseen data; use val_acc (the "
    "validation split, data.val_fraction) and read test_acc of the chosen trial only")
SPACE_EXAMPLE = {"train.optimizer.lr": {"loguniform": [1e-6, 1e-2]},
                 "train.weight_decay": {"loguniform": [1e-8, 1e-4]},
                 "model.hidden": {"choice": [[100, 100], [50, 100, 100]]},
                 "train.batch_size": {"grid": [50, 100]},
                 "model.dropout": {"uniform": [0.0, 0.5], "step": 0.1}}
SPACE_DOC = ("dotted spec path (a number indexes a list: model.hidden.0) -> one of "
             "{loguniform: [lo, hi]}, {uniform: [lo, hi]}, {int: [lo, hi]}, "
             "{int_log: [lo, hi]}, {choice: [values]}, {grid: [values]}; uniform and int take "
             "an optional step")
GRID_REFUSAL = ("the grid strategy cannot enumerate a continuous range; give grid or choice "
                "values, an int range or a step, or use strategy random")
NUMERIC_REFUSAL = ("the {} strategy searches numeric ranges only (uniform, loguniform, int, "
                   "int_log); use tpe or gp for listed values")
STRATEGY_DOC = ("random, grid, qmc: every trial drawn from the seed when the sweep is accepted; "
                "tpe, cmaes (numeric ranges only), gp: each trial chosen from the finished ones "
                "when it starts (Optuna's samplers)")


class SweepInvalid(SpecError):
    """A sweep request with problems, as (dotted path, message) pairs; the API answers 422."""


class PrunerOptions(BaseModel):
    """Early-stopping knobs; each applies to some pruners (defaults in PRUNER_DEFAULTS)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    warmup_epochs: int | None = Field(None, ge=0, le=MAX_EPOCH_OPTION,
                                      description="median, percentile: epochs never pruned")
    min_trials: int | None = Field(None, ge=1, le=MAX_TRIALS,
                                   description="median, percentile: succeeded trials needed "
                                               "at an epoch")
    percentile: float | None = Field(None, gt=0, lt=100,
                                     description="percentile: the top this-many % go on")
    min_epochs: int | None = Field(None, ge=1, le=MAX_EPOCH_OPTION,
                                   description="asha, hyperband: the first rung's epoch")
    reduction_factor: int | None = Field(None, ge=2, le=MAX_REDUCTION_FACTOR,
                                         description="asha, hyperband: keep the top 1/factor "
                                                     "per rung")


class SamplerOptions(BaseModel):
    """Knobs of the adaptive strategies (tpe, cmaes, gp)."""

    model_config = ConfigDict(extra="forbid")

    startup_trials: int | None = Field(
        None, ge=0, le=MAX_TRIALS,
        description="random trials before the sampler models the results "
                    "(default: tpe 10, gp 10, cmaes 1)")


class SweepRequest(BaseModel):
    """A search over a base spec: each trial is the base with the space's values set."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=NAME_MAX,
                      description="trial jobs are named <name>-t<index>")
    base: dict[str, Any] = Field(description="a job spec (see POST /jobs); the space overrides it")
    space: dict[str, dict[str, Any]] = Field(
        max_length=MAX_SPACE_PATHS, description=SPACE_DOC,
        json_schema_extra={"example": SPACE_EXAMPLE})
    strategy: Literal[STRATEGIES] = Field("random", description=STRATEGY_DOC)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    max_trials: int = Field(DEFAULT_TRIALS, ge=1, le=MAX_TRIALS,
                            description=f"trials run; grid: at most this many "
                                        f"(default: the grid's size); cap {MAX_TRIALS}")
    parallelism: int = Field(2, ge=1, le=MAX_PARALLELISM,
                             description="trials queued or running at once")
    metric: str = Field("val_acc",
                        description="maximised: val_acc (default) or train_acc; never test_acc")
    pruner: Literal[PRUNERS] = "none"
    pruner_options: PrunerOptions = Field(default_factory=PrunerOptions)
    sampler_options: SamplerOptions = Field(default_factory=SamplerOptions)

    @field_validator("metric")
    @classmethod
    def _selectable(cls, value: str) -> str:
        if value == "test_acc":
            raise PydanticCustomError("test_metric", TEST_METRIC_REFUSAL)
        if value not in METRICS:
            raise PydanticCustomError("unknown_metric", "expected one of {choices}",
                                      {"choices": ", ".join(METRICS)})
        return value


@dataclass(frozen=True)
class SweepPlan:
    """What create_sweep stores: the normalised request and each trial's params and spec
    (empty for an adaptive strategy's trials until they are chosen)."""

    request: dict[str, Any]
    params: list[dict[str, Any]]
    specs: list[dict[str, Any]]


def parse_request(data: Any) -> SweepRequest:
    try:
        return SweepRequest.model_validate(data)
    except ValidationError as exc:
        raise SweepInvalid(problems_from(exc, data)) from exc


def _base_document(base: dict[str, Any]) -> dict[str, Any]:
    try:
        return validate_spec(base).document()
    except SpecError as exc:
        raise SweepInvalid(exc.under("base").problems) from exc


def _unknown_field(base: dict[str, Any], path: str, value: Any) -> bool:
    """Whether ``path`` names no field of the spec schema (given the base's model kind)."""
    probe = copy.deepcopy(base)
    if not sp.set_path(probe, path, value):
        return True
    try:
        JobSpec.model_validate(probe)
    except ValidationError as exc:
        for err in exc.errors():
            where = _loc_path(err["loc"], probe)
            if err["type"] == "extra_forbidden" and (path == where or path.startswith(where + ".")):
                return True
    return False


def _loc_path(loc: tuple, root: dict) -> str:
    """The dotted path of an error location, union tags dropped (walks the document)."""
    parts, node = [], root
    for key in loc:
        in_object = isinstance(node, dict) and key in node
        in_list = isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)
        if in_object or in_list:
            parts.append(str(key))
            node = node[key]
    return ".".join(parts)


def _strategy_problems(request: SweepRequest) -> list[tuple[str, str]]:
    """Spaces the chosen strategy cannot search."""
    space, strategy = request.space, request.strategy
    if strategy == "grid":
        return [(f"space.{path}.{sp.kind_of(space[path])}", GRID_REFUSAL)
                for path in sp.continuous_paths(space)]
    if strategy in NUMERIC_ONLY:
        return [(f"space.{path}.{sp.kind_of(space[path])}", NUMERIC_REFUSAL.format(strategy))
                for path in sp.categorical_paths(space)]
    return []


def _check_space(request: SweepRequest, base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The checked space, each entry normalised (kind first, then step)."""
    try:
        sp.check_space(request.space)
    except sp.SpaceError as exc:
        raise SweepInvalid([(join_path("space", path), msg) for path, msg in exc.problems]) from exc
    unknown = [(f"space.{path}", "unknown spec field") for path, dist in request.space.items()
               if _unknown_field(base, path, sp.edge_values(dist)[0])]
    if unknown:
        raise SweepInvalid(unknown)
    problems = _strategy_problems(request)
    if problems:
        raise SweepInvalid(problems)
    return {path: sp.normalise(dist) for path, dist in request.space.items()}


def _check_strategy(request: SweepRequest) -> None:
    reason = unavailable(request.strategy)
    if reason:
        raise SweepInvalid([("strategy", reason)])
    given = request.sampler_options.model_dump(exclude_none=True)
    if given and request.strategy not in ADAPTIVE:
        raise SweepInvalid([(f"sampler_options.{key}",
                             f"applies to the strategies {', '.join(ADAPTIVE)} only")
                            for key in given])


def _trial_count(request: SweepRequest, space: dict[str, Any]) -> int:
    if request.strategy != "grid":
        return request.max_trials
    size = sp.grid_size(space)
    limit = request.max_trials if "max_trials" in request.model_fields_set else MAX_TRIALS
    if size > limit:
        raise SweepInvalid([("max_trials", (f"the grid has {size} combinations, more than "
                                            f"{limit}; shrink the grid or raise max_trials "
                                            f"(cap {MAX_TRIALS})"))])
    return size


def _applies_to(pruners: tuple[str, ...]) -> str:
    return f"applies to the pruner{'s' if len(pruners) > 1 else ''} {', '.join(pruners)} only"


def _pruner_options(request: SweepRequest, base: dict[str, Any]) -> dict[str, Any]:
    given = request.pruner_options.model_dump(exclude_none=True)
    wrong = [(f"pruner_options.{key}", _applies_to(PRUNER_OPTIONS[key]))
             for key in given if request.pruner not in PRUNER_OPTIONS[key]]
    if wrong:
        raise SweepInvalid(wrong)
    options = {**PRUNER_DEFAULTS[request.pruner], **given}
    epochs = int(base["train"]["epochs"])
    if request.pruner == "hyperband" and "train.epochs" not in request.space \
            and options["min_epochs"] > epochs:
        raise SweepInvalid([("pruner_options.min_epochs",
                             (f"the first rung ({options['min_epochs']}) is past the trials' "
                              f"last epoch ({epochs}); Hyperband would never stop a trial"))])
    return options


def trial_name(sweep_name: str, index: int) -> str:
    return f"{sweep_name}-t{index}"


def _as_error_path(path: str) -> str:
    """A space path as spec errors write it: list indices in brackets (model.hidden[0])."""
    return re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", path)


def _field_of(error_path: str, space_paths: list[str]) -> str:
    """The ``space.<path>`` a spec error belongs to, or ``space``."""
    for path in space_paths:
        shown = _as_error_path(path)
        if error_path == shown or error_path.startswith((shown + ".", shown + "[")):
            return f"space.{path}"
    return "space"


def trial_spec(base: dict, params: dict, name: str) -> dict:
    """The base with ``params`` set, named, validated and with defaults filled (SpecError)."""
    document = copy.deepcopy(base)
    for path, value in params.items():
        sp.set_path(document, path, value)
    document["name"] = name
    return validate_spec(document).document()


def _trial_spec(base: dict, params: dict, name: str, what: str, space_paths: list[str]) -> dict:
    try:
        return trial_spec(base, params, name)
    except SpecError as exc:
        raise SweepInvalid([(_field_of(path, space_paths),
                             f"{what} gives an invalid spec: {path}: {msg}")
                            for path, msg in exc.problems]) from exc


def _check_edges(base: dict, space: dict[str, Any], name: str) -> None:
    """Each path at each edge of its range and at each listed value gives a valid spec."""
    paths = list(space)
    for path, dist in space.items():
        for value in sp.edge_values(dist):
            _trial_spec(base, {path: value}, name, f"{path} = {value!r}", paths)


def _normalised(request: SweepRequest, base: dict, space: dict, count: int,
                pruner_options: dict) -> dict[str, Any]:
    """The stored request; ``sampler_options`` only where it applies (so requests stored
    before it existed still compare equal on an idempotent repeat)."""
    out = {**request.model_dump(mode="json"), "base": base, "space": space,
           "max_trials": count, "pruner_options": pruner_options}
    if request.strategy not in ADAPTIVE:
        out.pop("sampler_options")
    return out


def plan_sweep(data: Any) -> SweepPlan:
    """Validate a raw request (a dict or a SweepRequest); draw the trials of a strategy that
    draws up front, check the edges of the space for one that chooses later."""
    request = data if isinstance(data, SweepRequest) else parse_request(data)
    base = _base_document(request.base)
    _check_strategy(request)
    space = _check_space(request, base)
    count = _trial_count(request, space)
    options = _pruner_options(request, base)
    normalised = _normalised(request, base, space, count, options)
    paths = list(space)
    if request.strategy not in UPFRONT:
        _check_edges(base, space, trial_name(request.name, 0))
        return SweepPlan(request=normalised, params=[{} for _ in range(count)],
                         specs=[{} for _ in range(count)])
    params = draw_upfront(space, request.strategy, request.seed, count)
    specs = [_trial_spec(base, p, trial_name(request.name, i), f"trial {i}", paths)
             for i, p in enumerate(params)]
    return SweepPlan(request=normalised, params=params, specs=specs)
