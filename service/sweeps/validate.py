"""A sweep request -> the normalised request and every trial's spec, or SweepInvalid.

Everything is checked before anything is stored: the request's fields (pydantic), the base
spec, each space entry, that every space path names a field the spec schema knows, and
finally every generated trial spec with ``validate_spec``. Problems carry dotted paths into
the request (``space.train.optimizer.lr.loguniform``, ``max_trials``), like the job API.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from nncore import SpecError
from nncore.errors import join_path
from nncore.schema import problems_from
from service.spec import JobSpec, validate_spec
from service.sweeps import space as sp

MAX_TRIALS = 200
DEFAULT_TRIALS = 20
MAX_PARALLELISM = 64
MAX_SPACE_PATHS = 32
METRICS = ("val_acc", "train_acc")
PRUNERS = ("none", "median", "asha")
TRIAL_SUFFIX_ROOM = len("-t199")
NAME_MAX = 200 - TRIAL_SUFFIX_ROOM  # a trial's job name is f"{name}-t{index}", at most 200
PRUNER_DEFAULTS = {"none": {}, "median": {"warmup_epochs": 1, "min_trials": 3},
                   "asha": {"min_epochs": 1, "reduction_factor": 3}}
TEST_METRIC_REFUSAL = (
    "selecting on test accuracy leaks the test set into the choice of hyperparameters, so "
    "the reported test accuracy would no longer estimate unseen data; use val_acc (the "
    "validation split, data.val_fraction) and read test_acc of the chosen trial only")
SPACE_EXAMPLE = {"train.optimizer.lr": {"loguniform": [1e-6, 1e-2]},
                 "train.weight_decay": {"loguniform": [1e-8, 1e-4]},
                 "model.hidden": {"choice": [[100, 100], [50, 100, 100]]},
                 "train.batch_size": {"grid": [50, 100]}}


class SweepInvalid(SpecError):
    """A sweep request with problems, as (dotted path, message) pairs; the API answers 422."""


class PrunerOptions(BaseModel):
    """Early-stopping knobs; each applies to one pruner (defaults in PRUNER_DEFAULTS)."""

    model_config = ConfigDict(extra="forbid")

    warmup_epochs: int | None = Field(None, ge=0, le=200, description="median: epochs never pruned")
    min_trials: int | None = Field(None, ge=1, le=MAX_TRIALS,
                                   description="median: sibling trials needed at an epoch")
    min_epochs: int | None = Field(None, ge=1, le=200, description="asha: first rung's epoch")
    reduction_factor: int | None = Field(None, ge=2, le=100,
                                         description="asha: keep the top 1/factor per rung")


PRUNER_OPTIONS = {"warmup_epochs": "median", "min_trials": "median", "min_epochs": "asha",
                  "reduction_factor": "asha"}


class SweepRequest(BaseModel):
    """A search over a base spec: each trial is the base with the space's values set."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=NAME_MAX,
                      description="trial jobs are named <name>-t<index>")
    base: dict[str, Any] = Field(description="a job spec (see POST /jobs); the space overrides it")
    space: dict[str, dict[str, Any]] = Field(
        max_length=MAX_SPACE_PATHS,
        description="dotted spec path -> one of {loguniform: [lo, hi]}, {uniform: [lo, hi]}, "
                    "{choice: [values]}, {grid: [values]}",
        json_schema_extra={"example": SPACE_EXAMPLE})
    strategy: Literal["random", "grid"] = "random"
    seed: int = Field(0, ge=0, le=2**32 - 1)
    max_trials: int = Field(DEFAULT_TRIALS, ge=1, le=MAX_TRIALS,
                            description=f"random: trials drawn; grid: at most this many "
                                        f"(default: the grid's size); cap {MAX_TRIALS}")
    parallelism: int = Field(2, ge=1, le=MAX_PARALLELISM,
                             description="trials queued or running at once")
    metric: str = Field("val_acc",
                        description="maximised: val_acc (default) or train_acc; never test_acc")
    pruner: Literal["none", "median", "asha"] = "none"
    pruner_options: PrunerOptions = Field(default_factory=PrunerOptions)

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
    """What create_sweep stores: the normalised request and each trial's params and spec."""

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
        if isinstance(node, dict) and key in node:
            parts.append(str(key))
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            parts.append(str(key))
            node = node[key]
    return ".".join(parts)


def _sample(dist: dict[str, Any]) -> Any:
    """One value of a checked distribution, to probe where its path lands."""
    return next(iter(dist.values()))[0]


def _check_space(request: SweepRequest, base: dict[str, Any]) -> None:
    try:
        sp.check_space(request.space)
    except sp.SpaceError as exc:
        raise SweepInvalid([(join_path("space", path), msg) for path, msg in exc.problems]) from exc
    unknown = [(f"space.{path}", "unknown spec field") for path, dist in request.space.items()
               if _unknown_field(base, path, _sample(dist))]
    if unknown:
        raise SweepInvalid(unknown)
    if request.strategy == "grid":
        continuous = sp.continuous_paths(request.space)
        if continuous:
            raise SweepInvalid([
                (f"space.{path}.{next(iter(request.space[path]))}",
                 "the grid strategy cannot enumerate a continuous range; give grid or choice "
                 "values, or use strategy random") for path in continuous])


def _trial_count(request: SweepRequest) -> int:
    if request.strategy == "random":
        return request.max_trials
    size = sp.grid_size(request.space)
    limit = request.max_trials if "max_trials" in request.model_fields_set else MAX_TRIALS
    if size > limit:
        raise SweepInvalid([("max_trials", f"the grid has {size} combinations, more than "
                                           f"{limit}; shrink the grid or raise max_trials "
                                           f"(cap {MAX_TRIALS})")])
    return size


def _pruner_options(request: SweepRequest) -> dict[str, Any]:
    given = request.pruner_options.model_dump(exclude_none=True)
    wrong = [(f"pruner_options.{key}", f"applies to pruner {PRUNER_OPTIONS[key]!r} only")
             for key in given if PRUNER_OPTIONS[key] != request.pruner]
    if wrong:
        raise SweepInvalid(wrong)
    return {**PRUNER_DEFAULTS[request.pruner], **given}


def trial_name(sweep_name: str, index: int) -> str:
    return f"{sweep_name}-t{index}"


def _trial_spec(base: dict, params: dict, name: str, index: int, space_paths: list[str]) -> dict:
    document = copy.deepcopy(base)
    for path, value in params.items():
        sp.set_path(document, path, value)
    document["name"] = name
    try:
        return validate_spec(document).document()
    except SpecError as exc:
        problems = []
        for path, msg in exc.problems:
            field = next((f"space.{p}" for p in space_paths
                          if path == p or path.startswith(p + ".") or path.startswith(p + "[")),
                         "space")
            problems.append((field, f"trial {index} gives an invalid spec: {path}: {msg}"))
        raise SweepInvalid(problems) from exc


def plan_sweep(data: Any) -> SweepPlan:
    """Validate a raw request (a dict or a SweepRequest) and generate every trial."""
    request = data if isinstance(data, SweepRequest) else parse_request(data)
    base = _base_document(request.base)
    _check_space(request, base)
    count = _trial_count(request)
    options = _pruner_options(request)
    params = sp.generate(request.space, request.strategy, request.seed, count)
    paths = list(request.space)
    specs = [_trial_spec(base, p, trial_name(request.name, i), i, paths)
             for i, p in enumerate(params)]
    normalised = {**request.model_dump(mode="json"), "base": base, "max_trials": count,
                  "pruner_options": options}
    return SweepPlan(request=normalised, params=params, specs=specs)
