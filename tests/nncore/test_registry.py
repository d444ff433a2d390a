"""The registries are the one definition of the vocabulary: every layer type's declared output
shape and parameter count agree with the layer it builds, presets expand to registered layers,
and every optimizer's settings give its defaults."""

from __future__ import annotations

import numpy as np
import pytest

import nncore
from nncore.layers import BuildContext
from nncore.spec import expand, parse_layers

# A valid example of each layer type and an input shape it accepts.
EXAMPLES = {
    "affine": ({"type": "affine", "units": 7}, (3, 4, 4)),
    "conv": ({"type": "conv", "filters": 5, "size": 3, "pad": 1}, (2, 6, 6)),
    "maxpool": ({"type": "maxpool", "size": 2}, (2, 6, 6)),
    "batchnorm": ({"type": "batchnorm"}, (4, 3, 3)),
    "dropout": ({"type": "dropout", "rate": 0.3}, (6,)),
    "relu": ({"type": "relu"}, (6,)),
    "sigmoid": ({"type": "sigmoid"}, (6,)),
    "tanh": ({"type": "tanh"}, (6,)),
    "flatten": ({"type": "flatten"}, (2, 3, 3)),
}


def test_every_registered_layer_type_has_an_example_here():
    assert set(EXAMPLES) == set(nncore.LAYERS)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_declared_shape_and_parameter_count_match_the_built_layer(kind):
    layer_spec, shape = EXAMPLES[kind]
    (spec,) = parse_layers([layer_spec])
    rng = np.random.default_rng(0)
    ctx = BuildContext(np, np.dtype("float64"), rng, np.random.default_rng(1))
    layer = spec.build(shape, ctx)
    x = rng.standard_normal((2, *shape))
    for train in (True, False):
        assert layer.forward(x, train=train).shape == (2, *spec.output_shape(shape))
    assert sum(p.size for p in layer.params.values()) == spec.param_count(shape)


def test_a_normalised_layer_parses_back_to_itself():
    for layer_spec, _ in EXAMPLES.values():
        (spec,) = parse_layers([layer_spec])
        assert parse_layers([spec.normalised()])[0].normalised() == spec.normalised()


@pytest.mark.parametrize("name", sorted(nncore.PRESETS))
def test_every_preset_expands_with_its_defaults_into_registered_layers(name):
    expansion = expand({"preset": name}, 10)
    assert {layer["type"] for layer in expansion.layers} <= set(nncore.LAYERS)
    net = nncore.build({"layers": expansion.layers}, expansion.input_shape, 10)
    assert sum(p.size for p in net.params.values()) == expansion.param_count


@pytest.mark.parametrize("name", sorted(nncore.OPTIMIZERS))
def test_an_optimizer_takes_its_defaults_from_its_settings(name):
    optimizer = nncore.make_optimizer({"type": name})
    settings = nncore.OPTIMIZERS[name].Settings(type=name)
    assert optimizer.hyper == settings.model_dump(exclude={"type"})
    assert optimizer.name == name
