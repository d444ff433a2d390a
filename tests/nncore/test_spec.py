"""Model specs: presets expand to layer lists, bad specs name the field, counts need no memory."""
import pytest

import nncore


def test_mlp_preset_expands_like_the_books_multilayer_net_extend():
    layers = nncore.expand_model({"preset": "mlp", "hidden": [100, 50], "batchnorm": True, "dropout": 0.15},
                                 (784,), 10)
    assert [layer["type"] for layer in layers] == [
        "affine", "batchnorm", "relu", "dropout", "affine", "batchnorm", "relu", "dropout", "affine"]
    assert layers[0] == {"type": "affine", "units": 100, "init": "he", "init_std": 0.01}
    assert layers[-1]["units"] == 10


def test_expanded_layers_rebuild_the_same_network():
    spec = {"preset": "deep_convnet"}
    layers = nncore.expand_model(spec, (1, 28, 28), 10)
    assert nncore.expand_model({"layers": layers}, (1, 28, 28), 10) == layers
    assert sum(layer["type"] == "conv" for layer in layers) == 6


def test_count_params_matches_the_built_network():
    for spec in ({"preset": "simple_convnet", "batchnorm": True}, {"preset": "deep_convnet", "batchnorm": True},
                 {"preset": "mlp", "hidden": [50, 100, 100], "batchnorm": True}):
        net = nncore.build(spec, (1, 28, 28), 10)
        assert nncore.count_params(spec, (1, 28, 28), 10) == sum(p.size for p in net.params.values())


def test_count_params_of_a_huge_model_allocates_nothing():
    spec = {"layers": [{"type": "affine", "units": 100_000}, {"type": "affine", "units": 100_000},
                       {"type": "affine", "units": 10}]}
    assert nncore.count_params(spec, (784,), 10) > 10_000_000_000


@pytest.mark.parametrize("spec,path", [
    ({"preset": "mlp", "hidden": [10, -1]}, "hidden[1]"),
    ({"preset": "mlp", "colour": 3}, "colour"),
    ({"preset": "mlp", "dropout": 1.0}, "dropout"),
    ({"layers": [{"type": "conv", "filters": 4, "size": 40}, {"type": "affine", "units": 10}]}, "layers[0].size"),
    ({"layers": [{"type": "conv", "filters": 4, "size": 5}, {"type": "maxpool", "size": 6},
                 {"type": "conv", "filters": 4, "size": 5}, {"type": "affine", "units": 10}]}, "layers[2]"),
    ({"layers": [{"type": "conv", "filters": 4, "size": 3, "stride": 2}, {"type": "affine", "units": 10}]}, "layers[0]"),
    ({"layers": [{"type": "attention"}]}, "layers[0]"),
    ({"layers": [{"type": "affine"}]}, "layers[0].units"),
    ({"layers": [{"type": "affine", "units": 7}]}, "layers[0]"),
    ({"layers": [{"type": "dropout", "rate": 0.2, "seed": 1}, {"type": "affine", "units": 10}]}, "layers[0].seed"),
])
def test_bad_specs_raise_spec_error_naming_the_field(spec, path):
    with pytest.raises(nncore.SpecError) as err:
        nncore.expand_model(spec, (1, 28, 28), 10)
    assert err.value.path == path
    assert str(err.value).startswith(f"{path}: ")


@pytest.mark.parametrize("spec", [{"preset": "resnet"}, {}])
def test_a_model_without_a_known_preset_or_layers_says_so(spec):
    with pytest.raises(nncore.SpecError, match="preset"):
        nncore.expand_model(spec, (1, 28, 28), 10)
