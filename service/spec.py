"""The job spec (DESIGN.md "The job spec"): one schema for the API, the CLI and the worker.

Pydantic checks types, ranges and unknown fields; ``check_spec`` then asks nncore to expand
the network, so geometry errors (a kernel larger than its input, a last layer with the wrong
width) and the service's limits are caught at submission, not on a worker. Every problem is
reported with a dotted path into the submitted JSON, e.g. ``train.optimizer.lr``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator
from pydantic_core import PydanticCustomError

import nncore

MAX_PARAMS = 20_000_000
MAX_EPOCHS = 200
MAX_BATCH_SIZE = 10_000
MAX_LAYERS = 64
MAX_SYNTHETIC_SAMPLES = 100_000
MAX_WIDTH = 100_000
NUM_CLASSES = 10
IMAGE_SHAPE = (1, 28, 28)
FLAT_SHAPE = (784,)
PRESETS = ("mlp", "simple_convnet", "deep_convnet")

Width = Annotated[int, Field(ge=1, le=MAX_WIDTH)]
KernelSize = Annotated[int, Field(ge=1, le=28)]
Init = Literal["he", "xavier", "std"]


class Strict(BaseModel):
    """Unknown fields are errors, NaN/inf are rejected, every default is explicit."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class DataSpec(Strict):
    dataset: Literal[tuple(nncore.DATASETS)] = Field(description="one of nncore.DATASETS")
    train_limit: int | None = Field(None, ge=1, le=10**9, description="cap on training samples (the book's 300)")
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    samples: int = Field(2000, ge=10, le=MAX_SYNTHETIC_SAMPLES, description="synthetic only")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="validation split; synthetic data")


class MlpSpec(Strict):
    """The book's MultiLayerNetExtend."""

    preset: Literal["mlp"]
    hidden: list[Width] = Field(default_factory=lambda: [100, 100, 100], min_length=1,
                               max_length=MAX_LAYERS)
    activation: Literal["relu", "sigmoid", "tanh"] = "relu"
    init: Init = "he"
    init_std: float = Field(0.01, gt=0.0)
    batchnorm: bool = False
    dropout: float = Field(0.0, ge=0.0, lt=1.0)


class SimpleConvnetSpec(Strict):
    """Chapter 7's conv - relu - pool - affine - relu - affine."""

    preset: Literal["simple_convnet"]
    filters: Width = 30
    size: KernelSize = 5
    stride: KernelSize = 1
    pad: int = Field(0, ge=0, le=28)
    pool: KernelSize = 2
    hidden: Width = 100
    batchnorm: bool = False
    init: Init = "he"


class DeepConvnetSpec(Strict):
    """Chapter 8's fixed six-conv network."""

    preset: Literal["deep_convnet"]
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    batchnorm: bool = False


class ConvLayer(Strict):
    type: Literal["conv"]
    filters: Width
    size: KernelSize
    stride: KernelSize = 1
    pad: int = Field(0, ge=0, le=28)
    init: Init = "he"
    init_std: float = Field(0.01, gt=0.0)


class AffineLayer(Strict):
    type: Literal["affine"]
    units: Width
    init: Init = "he"
    init_std: float = Field(0.01, gt=0.0)


class PoolLayer(Strict):
    type: Literal["maxpool"]
    size: KernelSize = 2
    stride: KernelSize | None = Field(None, description="defaults to size")
    pad: int = Field(0, ge=0, le=28)


class DropoutLayer(Strict):
    type: Literal["dropout"]
    rate: float = Field(0.5, ge=0.0, lt=1.0)


class BatchNormLayer(Strict):
    type: Literal["batchnorm"]
    momentum: float = Field(0.1, gt=0.0, le=1.0, description="weight of the newest batch statistics")
    eps: float = Field(1e-5, gt=0.0)


class ActivationLayer(Strict):
    type: Literal["relu", "sigmoid", "tanh", "flatten"]


LAYER_TYPES = ("conv", "affine", "maxpool", "dropout", "batchnorm", "relu", "sigmoid", "tanh", "flatten")
OPTIMIZER_TYPES = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")


def _type_of(value: Any, default: str | None = None) -> Any:
    """A union member's ``type`` tag, from a dict or an already built model."""
    if isinstance(value, dict):
        return value.get("type", default)
    return getattr(value, "type", None)


def _choice_error(kind: str, choices: tuple) -> dict:
    return {"custom_error_type": f"unknown_{kind}",
            "custom_error_message": f"type must be one of {', '.join(choices)}"}


def _layer_kind(value: Any) -> Any:
    """A layer's ``type`` (activations share one model)."""
    kind = _type_of(value)
    return "activation" if kind in ("relu", "sigmoid", "tanh", "flatten") else kind


Layer = Annotated[
    Union[Annotated[ConvLayer, Tag("conv")], Annotated[AffineLayer, Tag("affine")],
          Annotated[PoolLayer, Tag("maxpool")], Annotated[DropoutLayer, Tag("dropout")],
          Annotated[BatchNormLayer, Tag("batchnorm")], Annotated[ActivationLayer, Tag("activation")]],
    Discriminator(_layer_kind, **_choice_error("layer", LAYER_TYPES)),
]


class LayersSpec(Strict):
    """An explicit network up to the logits; the last layer must output num_classes values."""

    layers: list[Layer] = Field(min_length=1, max_length=MAX_LAYERS)


def _model_kind(value: Any) -> str | None:
    """The union tag of a model spec: its preset name, or "layers" for an explicit list."""
    if isinstance(value, dict):
        return value.get("preset") if "preset" in value else ("layers" if "layers" in value else None)
    if isinstance(value, BaseModel):
        return getattr(value, "preset", "layers")
    return None


ModelSpec = Annotated[
    Union[Annotated[MlpSpec, Tag("mlp")], Annotated[SimpleConvnetSpec, Tag("simple_convnet")],
          Annotated[DeepConvnetSpec, Tag("deep_convnet")], Annotated[LayersSpec, Tag("layers")]],
    Discriminator(_model_kind, custom_error_type="model_kind",
                  custom_error_message="must be an object with a 'preset' or a 'layers' list"),
]


Lr = Annotated[float, Field(gt=0.0, le=10.0)]
Decay = Annotated[float, Field(ge=0.0, lt=1.0)]
Eps = Annotated[float, Field(gt=0.0, le=1.0)]


class SgdSpec(Strict):
    type: Literal["sgd"]
    lr: Lr = 0.01


class MomentumSpec(Strict):
    type: Literal["momentum", "nesterov"]
    lr: Lr = 0.01
    momentum: Decay = 0.9


class AdaGradSpec(Strict):
    type: Literal["adagrad"]
    lr: Lr = 0.01
    eps: Eps = 1e-10


class RMSpropSpec(Strict):
    type: Literal["rmsprop"]
    lr: Lr = 0.01
    alpha: Decay = 0.99
    eps: Eps = 1e-8


class AdamSpec(Strict):
    type: Literal["adam"] = "adam"
    lr: Lr = 0.001
    beta1: Decay = 0.9
    beta2: Decay = 0.999
    eps: Eps = 1e-8


def _optimizer_kind(value: Any) -> Any:
    """The optimizer's ``type``; a spec without one means Adam."""
    return _type_of(value, "adam")


OptimizerSpec = Annotated[
    Union[Annotated[SgdSpec, Tag("sgd")], Annotated[MomentumSpec, Tag("momentum")],
          Annotated[MomentumSpec, Tag("nesterov")], Annotated[AdaGradSpec, Tag("adagrad")],
          Annotated[RMSpropSpec, Tag("rmsprop")], Annotated[AdamSpec, Tag("adam")]],
    Discriminator(_optimizer_kind, **_choice_error("optimizer", OPTIMIZER_TYPES)),
]


class TrainSpec(Strict):
    epochs: int = Field(10, ge=1, le=MAX_EPOCHS)
    batch_size: int = Field(100, ge=1, le=MAX_BATCH_SIZE)
    optimizer: OptimizerSpec = Field(default_factory=AdamSpec)
    weight_decay: float = Field(0.0, ge=0.0, le=1.0)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    dtype: Literal["float32", "float64"] = "float32"


class JobSpec(Strict):
    """A training run: what data, which network, how to train, where."""

    name: str | None = Field(None, min_length=1, max_length=200)
    data: DataSpec
    model: ModelSpec
    train: TrainSpec = Field(default_factory=TrainSpec)
    device: Literal["cpu", "gpu"] = "cpu"

    @field_validator("model", mode="before")
    @classmethod
    def _known_kind(cls, value: Any) -> Any:
        """Name the preset problem instead of listing every union member's errors."""
        if not isinstance(value, dict):
            return value
        if "preset" in value:
            if value["preset"] not in PRESETS:
                raise PydanticCustomError(
                    "unknown_preset", "unknown preset '{preset}'; expected one of {choices}",
                    {"preset": value["preset"], "choices": ", ".join(PRESETS)})
        elif "layers" not in value:
            raise PydanticCustomError("model_kind", "needs a 'preset' ({choices}) or a 'layers' list",
                                  {"choices": ", ".join(PRESETS)})
        return value


class SpecInvalid(ValueError):
    """A spec with problems; ``problems`` is a list of (dotted path, message)."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{path}: {msg}" if path else msg for path, msg in problems))


def field_path(loc: tuple, root: Any = None) -> str:
    """``('model', 'layers', 2, 'conv', 'size')`` -> ``model.layers[2].size``.

    Pydantic puts union tags into locations; walking the submitted document keeps only the
    parts that really index into it, plus a missing field (last, under an object).
    """
    parts, node = [], root
    for i, key in enumerate(loc):
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        elif root is not None and (i < len(loc) - 1 or not isinstance(node, dict)):
            continue
        parts.append(f"[{key}]" if isinstance(key, int) else ("." if parts else "") + str(key))
    return "".join(parts)


def problems_from(exc: ValidationError, root: Any = None) -> list[tuple[str, str]]:
    """Pydantic errors as (dotted path, message) pairs."""
    return [(field_path(tuple(err["loc"]), root), err["msg"]) for err in exc.errors()]


def input_shape_for(layers: list[dict]) -> tuple[int, ...]:
    """Networks with a convolution see (1, 28, 28) images, others flat (784,) vectors (as nncore)."""
    return IMAGE_SHAPE if any(layer["type"] == "conv" for layer in layers) else FLAT_SHAPE


def model_dict(model: BaseModel) -> dict:
    """The model part as nncore takes it: unset optional fields left out."""
    return model.model_dump(mode="json", exclude_none=True)


def check_spec(spec: JobSpec) -> dict:
    """Expand the network with nncore and apply the limits; returns the expanded layers."""
    model = model_dict(spec.model)
    try:
        shape = input_shape_for(nncore.expand_model(model, IMAGE_SHAPE, NUM_CLASSES))
        layers = nncore.expand_model(model, shape, NUM_CLASSES)
        n_params = nncore.count_params(model, shape, NUM_CLASSES)
    except nncore.SpecError as exc:
        path = getattr(exc, "path", "") or ""
        message = getattr(exc, "message", None) or str(exc).removeprefix(f"{path}: ")
        sep = "" if not path or path.startswith("[") else "."
        raise SpecInvalid([(f"model{sep}{path}", message)]) from exc
    if len(layers) > MAX_LAYERS:
        raise SpecInvalid([("model", f"expands to {len(layers)} layers; the limit is {MAX_LAYERS}")])
    if n_params > MAX_PARAMS:
        raise SpecInvalid([("model", f"{n_params} parameters; the limit is {MAX_PARAMS}")])
    return layers


def validate_spec(data: Any) -> JobSpec:
    """Parse and fully check a submitted spec; raises SpecInvalid naming each bad field."""
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecInvalid(problems_from(exc, data)) from exc
    check_spec(spec)
    return spec


def spec_document(spec: JobSpec) -> dict:
    """The stored form of a spec: every default filled in, unset optionals left out."""
    return spec.model_dump(mode="json", exclude_none=True)
