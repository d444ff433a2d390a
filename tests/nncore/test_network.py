"""Whole networks: gradients of every preset, eval mode, weight decay, state round trips."""
import numpy as np
import pytest

import nncore

from .gradcheck import numeric_grad, relative_error, sample_indices

IMAGE = (1, 28, 28)
PRESETS = [
    ({"preset": "mlp", "hidden": [6, 5], "batchnorm": True, "dropout": 0.3}, (12,)),
    ({"preset": "mlp", "hidden": [4], "activation": "tanh", "init": "xavier"}, (8,)),
    ({"preset": "simple_convnet", "filters": 3, "size": 5, "hidden": 8, "batchnorm": True}, IMAGE),
    ({"preset": "deep_convnet", "batchnorm": True}, IMAGE),
]


@pytest.mark.parametrize("spec,shape", PRESETS, ids=["mlp_bn_dropout", "mlp_tanh", "simple_convnet", "deep_convnet"])
def test_network_gradient_matches_numeric_gradient(spec, shape):
    """Sampled entries of every tensor, float64, dropout masks replayed for each evaluation."""
    rng = np.random.default_rng(0)
    net = nncore.build(spec, shape, 10, seed=1, dtype="float64", weight_decay=0.01)
    x = rng.random((3, *shape))
    t = rng.integers(0, 10, 3)
    masks = net.rng_state()

    def loss():
        net.set_rng_state(masks)
        return net.loss(x, t, train=True)

    net.set_rng_state(masks)
    grads = {k: g.copy() for k, g in net.gradient(x, t).items()}
    assert set(grads) == set(net.params)
    for name, p in net.params.items():
        idx = sample_indices(p.size, 6, rng)
        numeric = numeric_grad(loss, p, idx).reshape(-1)[idx]
        analytic = grads[name].reshape(-1)[idx]
        if np.abs(numeric).max() < 1e-6:
            # a bias just before BatchNorm: the normalisation cancels it, the true gradient is 0
            assert np.abs(analytic).max() < 1e-9, name
            continue
        assert relative_error(analytic, numeric) < 1e-6, name


def test_gradient_runs_one_forward_and_reports_its_loss():
    net = nncore.build({"preset": "mlp", "hidden": [5], "batchnorm": True}, (4,), 3, dtype="float64")
    x, t = np.random.default_rng(0).random((6, 4)), np.array([0, 1, 2, 0, 1, 2])
    before = net.buffers["1.running_mean"].copy()
    net.gradient(x, t)
    after_one = net.buffers["1.running_mean"].copy()
    # one momentum update of the running mean means exactly one train-mode forward
    np.testing.assert_allclose(after_one, 0.9 * before + 0.1 * (x @ net.params["0.W"] + net.params["0.b"]).mean(0))
    assert net.last_loss == pytest.approx(nncore.build(
        {"preset": "mlp", "hidden": [5], "batchnorm": True}, (4,), 3, dtype="float64").loss(x, t))


def test_weight_decay_enters_loss_and_gradient_of_weights_only():
    spec = {"preset": "mlp", "hidden": [5], "batchnorm": True}
    x, t = np.random.default_rng(0).random((4, 6)), np.array([0, 1, 2, 1])
    plain = nncore.build(spec, (6,), 3, dtype="float64")
    decayed = nncore.build(spec, (6,), 3, dtype="float64", weight_decay=0.1)
    penalty = 0.05 * sum((plain.params[n] ** 2).sum() for n in ("0.W", "3.W"))
    assert decayed.loss(x, t) == pytest.approx(plain.loss(x, t) + penalty, rel=1e-12)
    g_plain, g_decay = plain.gradient(x, t), decayed.gradient(x, t)
    for name in plain.params:
        expected = g_plain[name] + (0.1 * plain.params[name] if name.endswith(".W") else 0)
        np.testing.assert_allclose(g_decay[name], expected, rtol=1e-10, atol=1e-12, err_msg=name)


def test_eval_mode_uses_running_statistics_and_batch_does_not_matter():
    spec = {"preset": "mlp", "hidden": [8], "batchnorm": True, "dropout": 0.5}
    net = nncore.build(spec, (5,), 3, dtype="float64")
    rng = np.random.default_rng(0)
    for _ in range(20):
        net.gradient(rng.random((16, 5)) * 4 + 1, rng.integers(0, 3, 16))
    assert not np.allclose(net.buffers["1.running_mean"], 0)
    x = rng.random((7, 5))
    batch = net.predict(x)
    for i in range(len(x)):
        np.testing.assert_allclose(net.predict(x[i:i + 1])[0], batch[i], rtol=1e-12)
    np.testing.assert_array_equal(net.predict(x), batch)  # dropout is off: deterministic
    h = x @ net.params["0.W"] + net.params["0.b"]
    bn = (h - net.buffers["1.running_mean"]) / np.sqrt(net.buffers["1.running_var"] + 1e-5)
    expected = np.maximum(bn * net.params["1.gamma"] + net.params["1.beta"], 0) @ net.params["4.W"] + net.params["4.b"]
    np.testing.assert_allclose(batch, expected, rtol=1e-10)


def test_batchnorm_gamma_and_beta_learn():
    net = nncore.build({"preset": "mlp", "hidden": [8], "batchnorm": True}, (5,), 3)
    opt = nncore.make_optimizer({"type": "sgd", "lr": 0.1})
    x, t = np.random.default_rng(0).random((16, 5)), np.arange(16) % 3
    opt.update(net.params, net.gradient(x, t))
    assert not np.allclose(net.params["1.gamma"], 1) and not np.allclose(net.params["1.beta"], 0)


def test_state_round_trip_through_bytes_gives_identical_predictions():
    spec = {"preset": "simple_convnet", "filters": 4, "hidden": 10, "batchnorm": True}
    net = nncore.build(spec, IMAGE, 10, seed=3)
    opt = nncore.make_optimizer({"type": "adam"})
    rng = np.random.default_rng(0)
    for _ in range(3):
        opt.update(net.params, net.gradient(rng.random((8, *IMAGE), dtype=np.float32), rng.integers(0, 10, 8)))
    blob = nncore.state_to_bytes(net.state_dict())
    state = nncore.state_from_bytes(blob)
    assert {"1.running_mean", "1.running_var", "5.running_mean", "5.running_var"} <= set(state)
    fresh = nncore.build(spec, IMAGE, 10, seed=99)
    fresh.load_state_dict(state)
    x = rng.random((5, *IMAGE), dtype=np.float32)
    np.testing.assert_array_equal(fresh.predict(x), net.predict(x))
    rebuilt = nncore.build({"layers": net.layers_spec}, IMAGE, 10)
    rebuilt.load_state_dict(state)
    np.testing.assert_array_equal(rebuilt.predict(x), net.predict(x))


def test_state_from_bytes_refuses_pickled_objects():
    import io

    buf = io.BytesIO()
    np.savez(buf, evil=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError):
        nncore.state_from_bytes(buf.getvalue())


def test_same_spec_and_seed_give_identical_parameters():
    spec = {"preset": "mlp", "hidden": [7, 7], "batchnorm": True, "dropout": 0.2}
    a, b = (nncore.build(spec, (9,), 4, seed=5) for _ in range(2))
    c = nncore.build(spec, (9,), 4, seed=6)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    assert not np.array_equal(a.params["0.W"], c.params["0.W"])


def test_float32_stays_float32_end_to_end():
    net = nncore.build({"preset": "simple_convnet", "filters": 2, "hidden": 5, "batchnorm": True}, IMAGE, 10)
    x = np.random.default_rng(0).random((2, *IMAGE), dtype=np.float32)
    grads = net.gradient(x, np.array([1, 2]))
    assert all(g.dtype == np.float32 for g in grads.values())
    assert all(b.dtype == np.float32 for b in net.buffers.values())
    assert net.predict(x).dtype == np.float32


@pytest.mark.parametrize("init,expected", [("he", np.sqrt(2 / 400)), ("xavier", np.sqrt(1 / 400)), ("std", 0.01)])
def test_init_scales_use_fan_in(init, expected):
    """fan_in of a conv is C*kh*kw = 16*5*5 = 400, and of an affine its input size."""
    spec = {"layers": [{"type": "conv", "filters": 200, "size": 5, "init": init},
                       {"type": "affine", "units": 10, "init": init}]}
    net = nncore.build(spec, (16, 5, 5), 10, dtype="float64")
    assert net.params["0.W"].std() == pytest.approx(expected, rel=0.05)
    fan_in = 200
    dense = {"he": np.sqrt(2 / fan_in), "xavier": np.sqrt(1 / fan_in), "std": 0.01}[init]
    assert net.params["1.W"].std() == pytest.approx(dense, rel=0.1)
