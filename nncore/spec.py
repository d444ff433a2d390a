"""The job spec, defined once: what data, which network, how to train, where.

Every part is a pydantic model derived from nncore's registries: layer types (``LAYERS``),
presets (``PRESETS``) and optimizers (``OPTIMIZERS``). The API publishes this schema (adding
only its limits), ``python -m nncore`` and the workers read specs through it, so the same
JSON means the same run everywhere. A model spec is a preset or an explicit layer list; it is
expanded once into the layer list a stored model keeps, checked for geometry, and its
parameters are counted from shapes alone, so an oversize model is refused before anything is
allocated.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from .augment import AugmentSpec
from .data.datasets import IMAGE_SHAPE
from .data.spec import MAX_TRAIN_LIMIT, DataSpec
from .data.synthetic import NUM_CLASSES
from .errors import SpecError
from .layers import LAYERS, LayerSpec
from .optimizers import DEFAULT_OPTIMIZER, OPTIMIZERS, OptimizerSpec
from .presets import PRESETS, Preset
from .schedules import DEFAULT_SCHEDULE, SCHEDULES, CosineSchedule, ScheduleSpec
from .schema import Seed, Strict, tag_of, tagged_union, validate

FLAT_SHAPE = (math.prod(IMAGE_SHAPE),)
DTYPES = ("float32", "float64")
DEVICES = ("cpu", "gpu")
MAX_WEIGHT_DECAY = 1.0
MAX_NAME = 200

Layer = tagged_union(LAYERS, tag_of("type"), "layer")
_LAYER = TypeAdapter(Layer)


class LayersSpec(Strict):
    """An explicit network up to the logits; the last layer must output num_classes values."""

    layers: list[Layer] = Field(min_length=1)


def _model_kind(value: Any) -> str | None:
    """The union tag of a model spec: its preset name, or "layers" for an explicit list."""
    if isinstance(value, dict):
        if "preset" in value:
            return value["preset"]
        return "layers" if "layers" in value else None
    return getattr(value, "preset", "layers") if isinstance(value, BaseModel) else None


def _known_kind(value: Any) -> Any:
    """Name the preset problem instead of listing every union member's errors."""
    if isinstance(value, dict):
        if "preset" in value and not (isinstance(value["preset"], str)
                                      and value["preset"] in PRESETS):
            raise PydanticCustomError(
                "unknown_preset", "unknown preset '{preset}'; expected one of {choices}",
                {"preset": value["preset"], "choices": ", ".join(PRESETS)})
        if "preset" not in value and "layers" not in value:
            raise PydanticCustomError(
                "model_kind", "needs a 'preset' ({choices}) or a 'layers' list",
                {"choices": ", ".join(PRESETS)})
    return value


ModelSpec = Annotated[
    Union[(*(Annotated[cls, Tag(name)] for name, cls in PRESETS.items()),
           Annotated[LayersSpec, Tag("layers")])],
    Discriminator(_model_kind, custom_error_type="model_kind",
                  custom_error_message="must be an object with a 'preset' or a 'layers' list"),
    BeforeValidator(_known_kind),
]
_MODEL = TypeAdapter(ModelSpec)


def _default_optimizer():
    return OPTIMIZERS[DEFAULT_OPTIMIZER].Settings()


def _default_schedule():
    return SCHEDULES[DEFAULT_SCHEDULE]()


class EarlyStoppingSpec(Strict):
    """Stop when val_acc has not improved for ``patience`` epochs."""

    patience: int = Field(5, ge=1, description="epochs without a better val_acc before stopping")
    min_delta: float = Field(0.0, ge=0.0, lt=1.0,
                             description="a better val_acc beats the best so far by more than this")


class TrainSpec(Strict):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(100, ge=1)
    optimizer: OptimizerSpec = Field(default_factory=_default_optimizer)
    schedule: ScheduleSpec = Field(default_factory=_default_schedule,
                                   description="the learning rate per step, peaking at optimizer.lr")
    weight_decay: float = Field(
        0.0, ge=0.0, le=MAX_WEIGHT_DECAY,
        description="L2 on every weight matrix and filter, in loss and gradient")
    seed: Seed = Field(0, description="initial weights, shuffling, dropout masks, augmentation")
    dtype: Literal[DTYPES] = "float32"
    augment: AugmentSpec = Field(default_factory=AugmentSpec,
                                 description="random transforms of each training batch; off")
    keep_best: bool = Field(False, description="the model is the epoch with the best val_acc, "
                                               "not the last")
    early_stopping: EarlyStoppingSpec | None = Field(
        None, description="stop once val_acc stops improving; null: train every epoch")
    train_acc_samples: int | None = Field(
        None, ge=1, le=MAX_TRAIN_LIMIT,
        description="train_acc on the first N training samples; null: all of them")

    @field_validator("schedule")
    @classmethod
    def _schedule_fits_the_run(cls, schedule, info: ValidationInfo):
        """Warmup must end before training does; cosine must anneal downwards."""
        epochs, optimizer = info.data.get("epochs"), info.data.get("optimizer")
        if epochs is not None and schedule.warmup_epochs >= epochs:
            raise PydanticCustomError(
                "warmup_too_long", "warmup_epochs ({warmup}) must be below epochs ({epochs})",
                {"warmup": schedule.warmup_epochs, "epochs": epochs})
        if (isinstance(schedule, CosineSchedule) and optimizer is not None
                and schedule.min_lr >= optimizer.lr):
            raise PydanticCustomError(
                "min_lr_too_high", "min_lr ({min_lr}) must be below optimizer.lr ({lr})",
                {"min_lr": schedule.min_lr, "lr": optimizer.lr})
        return schedule

    @property
    def selects_epochs(self) -> bool:
        """Whether epochs are judged by val_acc (best epoch kept, or early stopping)."""
        return self.keep_best or self.early_stopping is not None


@dataclasses.dataclass(frozen=True)
class Expansion:
    """A model spec resolved: its layers, the input shape they take and the per-sample shapes."""

    layers: list[dict]
    input_shape: tuple[int, ...]
    shapes: list[tuple[int, ...]]
    param_count: int


def _layer_specs(model: Any, num_classes: int) -> list[LayerSpec]:
    if isinstance(model, Preset):
        raw = model.expand(num_classes)
        return [validate(_LAYER, layer) for layer in raw]
    return list(model.layers)


def infer_shapes(layers: list[LayerSpec], input_shape) -> list[tuple]:
    """Per-sample shapes: the input's, then each layer's output; SpecError names a misfit."""
    shapes = [tuple(int(d) for d in input_shape)]
    for i, layer in enumerate(layers):
        try:
            shapes.append(tuple(layer.output_shape(shapes[-1])))
        except ValueError as exc:
            raise SpecError(f"layers[{i}]", f"{layer.type}: {exc}") from None
    return shapes


def input_shape_for(layers: list[LayerSpec]) -> tuple[int, ...]:
    """Networks with a spatial layer see (1, 28, 28) images, others flat (784,) vectors."""
    return IMAGE_SHAPE if any(layer.spatial for layer in layers) else FLAT_SHAPE


def expand(model_spec: Any, num_classes: int, input_shape=None) -> Expansion:
    """Resolve a model spec (dict or parsed); paths in errors are relative to the model spec."""
    model = validate(_MODEL, model_spec) if isinstance(model_spec, dict) else model_spec
    layers = _layer_specs(model, num_classes)
    shape = tuple(input_shape) if input_shape is not None else input_shape_for(layers)
    shapes = infer_shapes(layers, shape)
    if math.prod(shapes[-1]) != num_classes:
        raise SpecError(f"layers[{len(layers) - 1}]", f"the last layer outputs "
                        f"{math.prod(shapes[-1])} values, expected {num_classes} classes")
    count = sum(layer.param_count(s) for layer, s in zip(layers, shapes))
    return Expansion(layers=[layer.normalised() for layer in layers], input_shape=shape,
                     shapes=shapes, param_count=count)


def parse_layers(layers: list[dict]) -> list[LayerSpec]:
    """An expanded (stored) layer list as layer specs."""
    return [validate(_LAYER, layer) for layer in layers]


def expand_model(model_spec: dict, input_shape, num_classes: int) -> list[dict]:
    """The explicit, fully filled layer list of a preset or layer-list spec, checked for shape."""
    return expand(model_spec, num_classes, input_shape).layers


def count_params(model_spec: dict, input_shape, num_classes: int) -> int:
    """Trainable parameters of the model, computed from shapes alone."""
    return expand(model_spec, num_classes, input_shape).param_count


class JobSpec(Strict):
    """A training run: what data, which network, how to train, where."""

    num_classes: ClassVar[int] = NUM_CLASSES

    name: str | None = Field(None, min_length=1, max_length=MAX_NAME)
    data: DataSpec
    model: ModelSpec
    train: TrainSpec = Field(default_factory=TrainSpec)
    device: Literal[DEVICES] = "cpu"

    @field_validator("train")
    @classmethod
    def _validation_data_for_selection(cls, train, info: ValidationInfo):
        """Choosing epochs by val_acc needs a validation split, never the test set."""
        data = info.data.get("data")
        if train.selects_epochs and data is not None and data.val_fraction == 0:
            raise PydanticCustomError(
                "no_validation_data", "keep_best and early_stopping judge epochs by val_acc: "
                "data.val_fraction must be above 0")
        return train

    @functools.cached_property
    def expansion(self) -> Expansion:
        """The model expanded once; SpecError paths start at ``model``."""
        try:
            return expand(self.model, self.num_classes)
        except SpecError as exc:
            raise exc.under("model") from None

    @property
    def layers(self) -> list[dict]:
        return self.expansion.layers

    def document(self) -> dict:
        """The stored form: every default filled in, unset optionals left out."""
        return self.model_dump(mode="json", exclude_none=True)


def parse_spec(data: Any, schema: type[JobSpec] = JobSpec) -> JobSpec:
    """A job spec validated and its model expanded; raises SpecError naming each bad field."""
    if isinstance(data, JobSpec):
        spec = data
    else:
        spec = validate(schema, data)
    spec.expansion  # noqa: B018 - expanding is the geometry check
    return spec
