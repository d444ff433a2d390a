"""A stored network as an ONNX graph, built with the ``onnx`` package's own helpers.

The graph is the eval-mode forward: BatchNorm with its running statistics, Dropout as the
identity (nncore's dropout is inverted, so evaluation needs no rescaling), then a softmax, so
the output equals ``Network.predict_proba``. One exporter per layer type, keyed like
``LAYERS``; initializers keep nncore's tensor names (``"0.W"``, ``"1.running_mean"``), so a
graph can be read against the stored model. ``onnx.checker.check_model`` runs on every export.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

import numpy as np

OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
BATCH_DIM = "batch"
PRODUCER = "nnq"
SUPPORTED_DTYPES = ("float32", "float64")


class ExportError(ValueError):
    """A network the exporter cannot write (a layer type without an ONNX form)."""


class _Graph:
    """Nodes and initializers in order; each node's output is named after its layer."""

    def __init__(self, state: Mapping[str, np.ndarray], dtype: np.dtype):
        self.state, self.dtype = state, dtype
        self.nodes: list = []
        self.initializers: list = []

    def tensor(self, name: str) -> str:
        from onnx import numpy_helper

        array = np.asarray(self.state[name], dtype=self.dtype)
        self.initializers.append(numpy_helper.from_array(array, name=name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output


Exporter = Callable[[_Graph, str, dict, str], str]
EXPORTERS: dict[str, Exporter] = {}


def exporter(layer_type: str) -> Callable[[Exporter], Exporter]:
    """Register the ONNX form of one layer type: ``(graph, input, layer, prefix) -> output``."""
    def register(fn: Exporter) -> Exporter:
        EXPORTERS[layer_type] = fn
        return fn

    return register


def _square(value: int) -> list[int]:
    return [value, value]


@exporter("affine")
def _affine(g: _Graph, x: str, layer: dict, prefix: str) -> str:
    flat = g.node("Flatten", [x], f"{prefix}flat", axis=1)                 # (N, D)
    return g.node("Gemm", [flat, g.tensor(f"{prefix}W"), g.tensor(f"{prefix}b")],
                  f"{prefix}affine")                                     # (N, units)


@exporter("conv")
def _conv(g: _Graph, x: str, layer: dict, prefix: str) -> str:
    return g.node("Conv", [x, g.tensor(f"{prefix}W"), g.tensor(f"{prefix}b")], f"{prefix}conv",
                  kernel_shape=_square(layer["size"]), strides=_square(layer["stride"]),
                  pads=[layer["pad"]] * 4)                               # (N, FN, OH, OW)


@exporter("maxpool")
def _maxpool(g: _Graph, x: str, layer: dict, prefix: str) -> str:
    # nncore pads a pooled image with -inf, as ONNX does
    return g.node("MaxPool", [x], f"{prefix}maxpool", kernel_shape=_square(layer["size"]),
                  strides=_square(layer["stride"]), pads=[layer["pad"]] * 4)


@exporter("batchnorm")
def _batchnorm(g: _Graph, x: str, layer: dict, prefix: str) -> str:
    inputs = [x] + [g.tensor(f"{prefix}{name}")
                    for name in ("gamma", "beta", "running_mean", "running_var")]
    return g.node("BatchNormalization", inputs, f"{prefix}batchnorm", epsilon=layer["eps"])


def _elementwise(op: str) -> Exporter:
    def export(g: _Graph, x: str, layer: dict, prefix: str) -> str:
        return g.node(op, [x], f"{prefix}{layer['type']}")

    return export


for _type, _op in {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh",
                   "dropout": "Identity"}.items():
    exporter(_type)(_elementwise(_op))


@exporter("flatten")
def _flatten(g: _Graph, x: str, layer: dict, prefix: str) -> str:
    return g.node("Flatten", [x], f"{prefix}flatten", axis=1)


def signature(input_shape, num_classes: int, dtype) -> dict:
    """What an exported graph takes and gives: names, shapes (``batch`` any size), dtype."""
    return {"input_name": INPUT_NAME, "input_shape": [BATCH_DIM, *map(int, input_shape)],
            "output_name": OUTPUT_NAME, "output_shape": [BATCH_DIM, int(num_classes)],
            "dtype": np.dtype(dtype).name, "opset": OPSET}


def to_onnx(layers: list[dict], input_shape, num_classes: int, state: Mapping[str, np.ndarray],
            dtype="float32", name: str = "nnq-model", metadata: Mapping[str, str] | None = None):
    """The eval-mode network as a checked ``onnx.ModelProto``: input ``input`` of shape
    (batch, *input_shape), output ``probabilities`` of shape (batch, num_classes)."""
    import onnx
    from onnx import helper

    dtype = np.dtype(dtype)
    if dtype.name not in SUPPORTED_DTYPES:
        raise ExportError(f"dtype {dtype.name}: ONNX export takes {' or '.join(SUPPORTED_DTYPES)}")
    g = _Graph(state, dtype)
    x = INPUT_NAME
    for index, layer in enumerate(layers):
        export = EXPORTERS.get(layer["type"])
        if export is None:
            raise ExportError(f"layers[{index}]: no ONNX form for layer type {layer['type']!r}")
        x = export(g, x, layer, f"{index}.")
    g.node("Softmax", [x], OUTPUT_NAME, axis=1)
    elem = helper.np_dtype_to_tensor_dtype(dtype)
    graph = helper.make_graph(
        g.nodes, name, [helper.make_tensor_value_info(INPUT_NAME, elem,
                                                      [BATCH_DIM, *map(int, input_shape)])],
        [helper.make_tensor_value_info(OUTPUT_NAME, elem, [BATCH_DIM, int(num_classes)])],
        initializer=g.initializers)
    opset = helper.make_opsetid("", OPSET)
    model = helper.make_model(graph, opset_imports=[opset], producer_name=PRODUCER,
                              ir_version=helper.find_min_ir_version_for([opset]))
    helper.set_model_props(model, {"nnq.layers": json.dumps(layers), **(metadata or {})})
    onnx.checker.check_model(model, full_check=True)
    return model


def onnx_bytes(*args, **kwargs) -> bytes:
    """``to_onnx(...)`` serialised: what ``model.onnx`` downloads hold."""
    return to_onnx(*args, **kwargs).SerializeToString()
