"""Every layer's backward against central differences (float64, batch >= 2, rel. error < 1e-6)."""
import numpy as np
import pytest

from nncore import layers as L

from .gradcheck import numeric_grad, relative_error

TOL = 1e-6


def away_from_zero(rng, shape):
    """Inputs whose magnitude stays clear of ReLU's kink under a 1e-6 perturbation."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < 0.05, 0.05 * np.sign(x) + 0.05 * (x == 0), x)


def make_layers(rng):
    """(name, layer, input) for every layer kind, float64."""
    conv_W = rng.standard_normal((3, 2, 3, 3)) * 0.3
    return [
        ("affine", L.Affine(rng.standard_normal((12, 5)), rng.standard_normal(5)), rng.standard_normal((4, 3, 2, 2))),
        ("relu", L.ReLU(), away_from_zero(rng, (3, 7))),
        ("sigmoid", L.Sigmoid(np), rng.standard_normal((3, 7)) * 3),
        ("tanh", L.Tanh(np), rng.standard_normal((3, 7))),
        ("batchnorm_features", L.BatchNorm(rng.random(6) + 0.5, rng.standard_normal(6), np.zeros(6), np.ones(6)),
         rng.standard_normal((5, 6))),
        ("batchnorm_channels", L.BatchNorm(rng.random(3) + 0.5, rng.standard_normal(3), np.zeros(3), np.ones(3)),
         rng.standard_normal((2, 3, 4, 4))),
        ("conv", L.Conv2D(conv_W, rng.standard_normal(3), stride=1, pad=1, xp=np), rng.standard_normal((2, 2, 5, 5))),
        ("conv_strided", L.Conv2D(conv_W, rng.standard_normal(3), stride=2, pad=0, xp=np),
         rng.standard_normal((2, 2, 7, 7))),
        ("maxpool", L.MaxPool2D(2, 2, 0, np), rng.permutation(2 * 3 * 4 * 4).reshape(2, 3, 4, 4) * 0.1),
        ("maxpool_overlapping", L.MaxPool2D(3, 1, 1, np), rng.permutation(2 * 2 * 5 * 5).reshape(2, 2, 5, 5) * 0.1),
        ("flatten", L.Flatten(), rng.standard_normal((2, 3, 2, 2))),
    ]


@pytest.mark.parametrize("case", range(11), ids=[c[0] for c in make_layers(np.random.default_rng(0))])
def test_layer_backward_matches_numeric_gradient(case):
    rng = np.random.default_rng(case)
    name, layer, x = make_layers(rng)[case]
    x = x.astype(np.float64)
    out = layer.forward(x, train=True)
    weight = rng.standard_normal(out.shape)  # a random linear read-out makes every output count

    def scalar():
        return float((layer.forward(x, train=True) * weight).sum())

    layer.forward(x, train=True)
    dout = weight.copy()
    dx = layer.backward(dout)
    np.testing.assert_array_equal(dout, weight, err_msg="backward must not write into dout")
    assert relative_error(dx, numeric_grad(scalar, x)) < TOL, name
    for key, p in layer.params.items():
        assert relative_error(layer.grads[key], numeric_grad(scalar, p)) < TOL, f"{name}.{key}"


def test_dropout_backward_uses_the_forward_mask_and_eval_is_identity():
    rng = np.random.default_rng(1)
    layer = L.Dropout(0.4, np.random.default_rng(2), np, np.dtype(np.float64))
    x = rng.standard_normal((50, 40)) + 3
    y = layer.forward(x, train=True)
    kept = y != 0
    assert 0.5 < kept.mean() < 0.7
    np.testing.assert_allclose(y[kept], x[kept] / 0.6)  # inverted: scaled at train time
    dout = rng.standard_normal(x.shape)
    np.testing.assert_allclose(layer.backward(dout), np.where(kept, dout / 0.6, 0))
    np.testing.assert_array_equal(layer.forward(x, train=False), x)


def test_softmax_cross_entropy_gradient_and_one_hot_labels():
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((4, 5)) * 3
    labels = np.array([0, 3, 4, 1])
    loss = L.SoftmaxCrossEntropy(np)
    value = loss.forward(scores, labels)
    grad = loss.backward()
    numeric = numeric_grad(lambda: loss.forward(scores, labels), scores)
    assert relative_error(grad, numeric) < TOL
    assert loss.forward(scores, np.eye(5)[labels]) == pytest.approx(value, rel=1e-12)


def test_softmax_cross_entropy_is_stable_for_huge_scores():
    loss = L.SoftmaxCrossEntropy(np)
    value = loss.forward(np.array([[1000.0, 0.0], [0.0, -1000.0]]), np.array([0, 0]))
    assert np.isfinite(value) and value == pytest.approx(0.0, abs=1e-12)
