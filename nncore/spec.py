"""Model specs: presets expand to explicit layer lists; shapes and parameter counts are inferred
without allocating anything, so a service can refuse an oversize model before it is built.

A spec is ``{"preset": NAME, ...fields}`` or ``{"layers": [{"type": ..., ...}, ...]}`` with the
field names of DESIGN.md. ``expand_model`` returns the explicit list with every default filled
in; that list is what a stored model keeps and what ``build`` consumes.
"""
import math

from .errors import SpecError
from .geometry import conv_output_size
from .init import INITS

REQUIRED = object()

# type -> {field: default}; REQUIRED marks fields without a default.
LAYER_FIELDS: dict[str, dict] = {
    "affine": {"units": REQUIRED, "init": "he", "init_std": 0.01},
    "conv": {"filters": REQUIRED, "size": REQUIRED, "stride": 1, "pad": 0, "init": "he", "init_std": 0.01},
    "maxpool": {"size": 2, "stride": None, "pad": 0},
    "batchnorm": {"momentum": 0.1, "eps": 1e-5},
    "dropout": {"rate": 0.5},
    "relu": {},
    "sigmoid": {},
    "tanh": {},
    "flatten": {},
}

PRESET_FIELDS: dict[str, dict] = {
    "mlp": {"hidden": [100, 100, 100], "activation": "relu", "init": "he", "init_std": 0.01,
            "batchnorm": False, "dropout": 0.0},
    "simple_convnet": {"filters": 30, "size": 5, "stride": 1, "pad": 0, "pool": 2, "hidden": 100,
                       "batchnorm": False, "init": "he"},
    "deep_convnet": {"dropout": 0.5, "batchnorm": False},
}

ACTIVATIONS = ("relu", "sigmoid", "tanh")

# The book's ch. 8 network: (filters, pad) of its six 3x3 convolutions, a pool after every pair.
DEEP_CONVNET_CONVS = ((16, 1), (16, 1), (32, 1), (32, 2), (64, 1), (64, 1))
DEEP_CONVNET_HIDDEN = 50


def _check_int(path, value, *, minimum=1):
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(path, f"must be an integer, got {value!r}")
    if value < minimum:
        raise SpecError(path, f"must be >= {minimum}")
    return value


def _check_number(path, value, *, low=None, high=None, high_open=False, low_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(path, f"must be a finite number, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise SpecError(path, f"must be {'>' if low_open else '>='} {low}")
    if high is not None and (value > high or (high_open and value == high)):
        raise SpecError(path, f"must be {'<' if high_open else '<='} {high}")
    return float(value)


def _check_choice(path, value, choices):
    if value not in choices:
        raise SpecError(path, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def _fill(path: str, given: dict, defaults: dict, skip=("type", "preset")) -> dict:
    """Defaults merged with the given fields; unknown and missing fields are errors."""
    if not isinstance(given, dict):
        raise SpecError(path, "must be an object")
    unknown = sorted(set(given) - set(defaults) - set(skip))
    if unknown:
        raise SpecError(_join(path, unknown[0]), "unknown field")
    out = {}
    for name, default in defaults.items():
        value = given.get(name, default)
        if value is REQUIRED:
            raise SpecError(_join(path, name), "is required")
        out[name] = value
    return out


def _join(path, name):
    return f"{path}.{name}" if path else name


def normalise_layer(path: str, layer: dict) -> dict:
    """One explicit layer with its fields checked and defaults filled."""
    if not isinstance(layer, dict):
        raise SpecError(path, "must be an object")
    kind = layer.get("type")
    if kind not in LAYER_FIELDS:
        raise SpecError(_join(path, "type"), f"must be one of {', '.join(LAYER_FIELDS)}, got {kind!r}")
    f = _fill(path, layer, LAYER_FIELDS[kind])
    p = lambda name: _join(path, name)  # noqa: E731 - a tiny path builder
    if kind == "affine":
        _check_int(p("units"), f["units"])
    if kind == "conv":
        _check_int(p("filters"), f["filters"])
        _check_int(p("size"), f["size"])
        _check_int(p("stride"), f["stride"])
        _check_int(p("pad"), f["pad"], minimum=0)
    if kind in ("affine", "conv"):
        _check_choice(p("init"), f["init"], INITS)
        f["init_std"] = _check_number(p("init_std"), f["init_std"], low=0, low_open=True)
    if kind == "maxpool":
        _check_int(p("size"), f["size"])
        f["stride"] = f["size"] if f["stride"] is None else _check_int(p("stride"), f["stride"])
        _check_int(p("pad"), f["pad"], minimum=0)
    if kind == "batchnorm":
        f["momentum"] = _check_number(p("momentum"), f["momentum"], low=0, high=1, low_open=True)
        f["eps"] = _check_number(p("eps"), f["eps"], low=0, low_open=True)
    if kind == "dropout":
        f["rate"] = _check_number(p("rate"), f["rate"], low=0, high=1, high_open=True)
    return {"type": kind, **f}


def _mlp(f, num_classes):
    hidden = f["hidden"]
    if not isinstance(hidden, list) or not hidden:
        raise SpecError("hidden", "must be a non-empty list of integers")
    for i, units in enumerate(hidden):
        _check_int(f"hidden[{i}]", units)
    _check_choice("activation", f["activation"], ACTIVATIONS)
    _check_choice("init", f["init"], INITS)
    _check_number("init_std", f["init_std"], low=0, low_open=True)
    rate = _check_number("dropout", f["dropout"], low=0, high=1, high_open=True)
    dense = {"init": f["init"], "init_std": f["init_std"]}
    layers = []
    for units in hidden:
        layers.append({"type": "affine", "units": units, **dense})
        if f["batchnorm"]:
            layers.append({"type": "batchnorm"})
        layers.append({"type": f["activation"]})
        if rate > 0:
            layers.append({"type": "dropout", "rate": rate})
    layers.append({"type": "affine", "units": num_classes, **dense})
    return layers


def _simple_convnet(f, num_classes):
    for name in ("filters", "size", "stride", "pool", "hidden"):
        _check_int(name, f[name])
    _check_int("pad", f["pad"], minimum=0)
    _check_choice("init", f["init"], INITS)
    bn = [{"type": "batchnorm"}] if f["batchnorm"] else []
    return [
        {"type": "conv", "filters": f["filters"], "size": f["size"], "stride": f["stride"],
         "pad": f["pad"], "init": f["init"]},
        *bn, {"type": "relu"}, {"type": "maxpool", "size": f["pool"]},
        {"type": "affine", "units": f["hidden"], "init": f["init"]},
        *bn, {"type": "relu"},
        {"type": "affine", "units": num_classes, "init": f["init"]},
    ]


def _deep_convnet(f, num_classes):
    """The book's ch. 8 net, dropout after the hidden and the output affine as it has them."""
    rate = _check_number("dropout", f["dropout"], low=0, high=1, high_open=True)
    bn = [{"type": "batchnorm"}] if f["batchnorm"] else []
    drop = [{"type": "dropout", "rate": rate}] if rate > 0 else []
    layers = []
    for i, (filters, pad) in enumerate(DEEP_CONVNET_CONVS):
        layers += [{"type": "conv", "filters": filters, "size": 3, "pad": pad}, *bn, {"type": "relu"}]
        if i % 2 == 1:
            layers.append({"type": "maxpool", "size": 2})
    layers += [{"type": "affine", "units": DEEP_CONVNET_HIDDEN}, *bn, {"type": "relu"}, *drop,
               {"type": "affine", "units": num_classes}, *drop]
    return layers


PRESETS = {"mlp": _mlp, "simple_convnet": _simple_convnet, "deep_convnet": _deep_convnet}


def expand_model(model_spec: dict, input_shape, num_classes: int) -> list[dict]:
    """The explicit, fully filled layer list of a preset or layer-list spec, checked for shape."""
    if not isinstance(model_spec, dict):
        raise SpecError("", "the model spec must be an object")
    if "preset" in model_spec and "layers" in model_spec:
        raise SpecError("layers", "give either 'preset' or 'layers', not both")
    if "preset" in model_spec:
        name = model_spec["preset"]
        if name not in PRESETS:
            raise SpecError("preset", f"must be one of {', '.join(PRESETS)}, got {name!r}")
        raw = PRESETS[name](_fill("", model_spec, PRESET_FIELDS[name]), num_classes)
        layers = [normalise_layer(f"layers[{i}]", layer) for i, layer in enumerate(raw)]
    elif "layers" in model_spec:
        _fill("", model_spec, {"layers": None})
        given = model_spec["layers"]
        if not isinstance(given, list) or not given:
            raise SpecError("layers", "must be a non-empty list")
        layers = [normalise_layer(f"layers[{i}]", layer) for i, layer in enumerate(given)]
    else:
        raise SpecError("preset", "a model needs 'preset' or 'layers'")
    out = infer_shapes(layers, input_shape)[-1]
    if math.prod(out) != num_classes:
        raise SpecError(f"layers[{len(layers) - 1}]",
                        f"the last layer outputs {math.prod(out)} values, expected {num_classes} classes")
    return layers


def _layer_shapes(layer: dict, shape: tuple) -> tuple[tuple, int]:
    """(output shape, parameter count) of one normalised layer on a per-sample input shape."""
    kind = layer["type"]
    if kind == "affine":
        fan_in = math.prod(shape)
        return (layer["units"],), fan_in * layer["units"] + layer["units"]
    if kind == "flatten":
        return (math.prod(shape),), 0
    if kind in ("conv", "maxpool"):
        if len(shape) != 3:
            raise ValueError(f"needs (C, H, W) input, got {shape}")
        c, h, w = shape
        k, s, pad = layer["size"], layer["stride"], layer["pad"]
        oh, ow = conv_output_size(h, k, s, pad), conv_output_size(w, k, s, pad)
        if kind == "maxpool":
            return (c, oh, ow), 0
        f = layer["filters"]
        return (f, oh, ow), f * c * k * k + f
    if kind == "batchnorm":
        if len(shape) not in (1, 3):
            raise ValueError(f"needs (D,) or (C, H, W) input, got {shape}")
        return shape, 2 * shape[0]
    return shape, 0  # activations and dropout keep the shape


def infer_shapes(layers: list[dict], input_shape) -> list[tuple]:
    """Per-sample shapes: the input's, then each layer's output."""
    shapes = [tuple(int(d) for d in input_shape)]
    for i, layer in enumerate(layers):
        try:
            out, _ = _layer_shapes(layer, shapes[-1])
        except ValueError as exc:
            raise SpecError(f"layers[{i}]", f"{layer['type']}: {exc}") from None
        shapes.append(out)
    return shapes


def count_params(model_spec: dict, input_shape, num_classes: int) -> int:
    """Trainable parameters of the model, computed from shapes alone."""
    layers = expand_model(model_spec, input_shape, num_classes)
    shapes = infer_shapes(layers, input_shape)
    return sum(_layer_shapes(layer, shape)[1] for layer, shape in zip(layers, shapes))
