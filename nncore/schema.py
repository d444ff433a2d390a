"""The building blocks every spec definition shares: a strict base model, common field types,
tagged unions built from a registry, and pydantic errors turned into ``SpecError`` paths.

nncore's definitions (layers, presets, optimizers, the job spec) are pydantic models, so one
declaration gives validation with field-level messages, defaults, and the JSON schema the
service publishes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError

from .errors import SpecError
from .init import INITS

MAX_WIDTH = 100_000       # units or filters of one layer: a sanity bound, not a service limit
MAX_GEOMETRY = 28         # kernel, stride and pad never exceed the 28-pixel images
MAX_SEED = 2**32 - 1

Width = Annotated[int, Field(ge=1, le=MAX_WIDTH)]
KernelSize = Annotated[int, Field(ge=1, le=MAX_GEOMETRY)]
Padding = Annotated[int, Field(ge=0, le=MAX_GEOMETRY)]
Rate = Annotated[float, Field(ge=0.0, lt=1.0)]
Positive = Annotated[float, Field(gt=0.0)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
Init = Literal[INITS]


class Strict(BaseModel):
    """Unknown fields are errors, NaN/inf are rejected, every default is explicit."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def literal_value(model: type[BaseModel], field: str) -> str:
    """The single value of a ``Literal["x"]`` field: a registered class's tag."""
    return get_args(model.model_fields[field].annotation)[0]


def tagged_union(registry: dict[str, type[BaseModel]], tag_of, kind: str, field: str = "type"):
    """A discriminated union of every registered model, with one readable error for an unknown
    tag (``type must be one of ...``) instead of one error per member."""
    members = tuple(Annotated[model, Tag(name)] for name, model in registry.items())
    return Annotated[
        Union[members],
        Discriminator(tag_of, custom_error_type=f"unknown_{kind}",
                      custom_error_message=f"{field} must be one of {', '.join(registry)}"),
    ]


def tag_of(field: str, default: str | None = None):
    """A discriminator reading ``field`` from a dict or an already built model."""
    def read(value: Any) -> Any:
        if isinstance(value, dict):
            return value.get(field, default)
        return getattr(value, field, None)
    return read


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


def validate(adapter: TypeAdapter | type[BaseModel], data: Any):
    """``data`` validated by a model or adapter; failures raise SpecError naming each field."""
    try:
        if isinstance(adapter, TypeAdapter):
            return adapter.validate_python(data)
        return adapter.model_validate(data)
    except ValidationError as exc:
        raise SpecError(problems_from(exc, data)) from None
