"""The job spec as the API takes it: nncore's one definition plus the service's limits.

nncore declares every field, default and bound (``nncore.JobSpec``); the service only caps
what protects it — parameters, layers, epochs, batch size and the training memory nncore
estimates for the batch and the model (``nncore.memory``, against NNQ_MAX_JOB_MEMORY_MB). The
epoch and batch caps are added to the published schema; ``check_limits`` applies them all to a
parsed spec, so the worker can re-check rows written by other means without validating the
spec again.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, create_model

import nncore
from nncore.memory import estimate_job_memory
from nncore.spec import TrainSpec
from service.settings import settings

MAX_PARAMS = 20_000_000
MAX_EPOCHS = 200
MAX_BATCH_SIZE = 10_000
MAX_LAYERS = 64


def with_maxima(model: type[BaseModel], **maxima: int) -> type[BaseModel]:
    """``model`` (same name, fields and defaults) with ``le`` bounds added to some fields."""
    fields = {name: Annotated[model.model_fields[name].annotation, model.model_fields[name],
                              Field(le=maximum)]
              for name, maximum in maxima.items()}
    return create_model(model.__name__, __base__=model, __module__=__name__, **fields)


LimitedTrainSpec = with_maxima(TrainSpec, epochs=MAX_EPOCHS, batch_size=MAX_BATCH_SIZE)
JobSpec = create_model("JobSpec", __base__=nncore.JobSpec, __module__=__name__,
                       train=(LimitedTrainSpec, Field(default_factory=LimitedTrainSpec)))


def check_limits(spec: nncore.JobSpec) -> None:
    """Refuse a parsed spec beyond the service's limits; SpecError names each field."""
    problems = []
    if spec.train.epochs > MAX_EPOCHS:
        problems.append(("train.epochs", f"{spec.train.epochs} epochs; the limit is {MAX_EPOCHS}"))
    if spec.train.batch_size > MAX_BATCH_SIZE:
        problems.append(("train.batch_size", (f"{spec.train.batch_size} samples per batch; "
                                             f"the limit is {MAX_BATCH_SIZE}")))
    expansion = spec.expansion
    if len(expansion.layers) > MAX_LAYERS:
        problems.append(("model", (f"expands to {len(expansion.layers)} layers; "
                                  f"the limit is {MAX_LAYERS}")))
    if expansion.param_count > MAX_PARAMS:
        problems.append(("model", f"{expansion.param_count} parameters; the limit is {MAX_PARAMS}"))
    if not problems:
        problems = memory_problems(spec)
    if problems:
        raise nncore.SpecError(problems)


def memory_problems(spec: nncore.JobSpec) -> list[tuple[str, str]]:
    """The batch and the model together, when their estimated training memory is above
    NNQ_MAX_JOB_MEMORY_MB: both fields are named, either one can bring it down."""
    limit = settings().max_job_memory_mb
    estimate = estimate_job_memory(spec)
    if estimate.megabytes <= limit:
        return []
    need = (f"training needs an estimated {estimate.describe()}; the limit "
            f"NNQ_MAX_JOB_MEMORY_MB is {limit} MB")
    return [("train.batch_size", f"{spec.train.batch_size} samples per batch: {need}"),
            ("model", f"this model at batch {spec.train.batch_size}: {need}")]


def validate_spec(data: Any) -> nncore.JobSpec:
    """Parse, expand and limit-check a submitted spec; raises SpecError naming each field."""
    spec = nncore.parse_spec(data, JobSpec)
    check_limits(spec)
    return spec
