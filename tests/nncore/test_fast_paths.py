"""The speed machinery changes no result: conv blocks, padded rows, reused buffers, flat
parameters and the optimizers' in-place steps against the plain computations."""
import itertools

import numpy as np
import pytest

import nncore
from nncore import layers as L
from nncore.backend import FlatTensors, same_layout
from nncore.layers.conv import sample_blocks

from .test_conv_reference import naive_conv, naive_pool

SMALL_BLOCK = 4000  # bytes of columns per block: one or two of the test samples, so several blocks


@pytest.mark.parametrize("n,per_sample,budget", [(100, 1000, 7000), (10, 1, 10**9), (7, 50, 1), (5, 3, None)])
def test_sample_blocks_cover_the_batch_in_order_within_the_budget(n, per_sample, budget):
    blocks = sample_blocks(n, per_sample, budget)
    assert blocks[0][0] == 0 and blocks[-1][1] == n
    assert all(a[1] == b[0] for a, b in itertools.pairwise(blocks))
    sizes = [hi - lo for lo, hi in blocks]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1
    if budget is None:
        assert blocks == [(0, n)]
    elif budget >= per_sample:
        assert max(sizes) * per_sample <= budget


@pytest.mark.parametrize("stride,pad,size", [(1, 1, 3), (1, 2, 3), (1, 0, 5), (2, 1, 3), (1, 3, 3)])
def test_conv_in_many_blocks_matches_loops_and_one_block(stride, pad, size):
    """Forward against loops; backward (both the correlation and the col2im path) against the
    same layer taking the whole batch as one block."""
    rng = np.random.default_rng(stride * 10 + pad)
    h = size + 4 * stride  # a size the windows tile exactly
    x = rng.standard_normal((5, 2, h, h))
    W, b = rng.standard_normal((3, 2, size, size)), rng.standard_normal(3)
    blocked = L.Conv2D(W, b, stride=stride, pad=pad, xp=np)
    blocked._block_bytes = SMALL_BLOCK
    whole = L.Conv2D(W, b, stride=stride, pad=pad, xp=np)
    whole._block_bytes = None  # the whole batch as one block
    out = blocked.forward(x, train=True)
    np.testing.assert_allclose(out, naive_conv(x, W, b, stride, pad), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(whole.forward(x, train=True), out, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx_blocked, dx_whole = blocked.backward(dout), whole.backward(dout)
    np.testing.assert_allclose(dx_blocked, dx_whole, rtol=1e-10, atol=1e-12)
    for key in ("W", "b"):
        np.testing.assert_allclose(blocked.grads[key], whole.grads[key], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("size,stride,pad", [(3, 3, 0), (2, 2, 1), (2, 3, 0)])
def test_maxpool_geometries_the_reference_misses_match_loops(size, stride, pad):
    """Tiling 3x3 (every pixel written once, no zeroing), stride = size with padding and
    windows with gaps between them; repeated calls reuse the gradient memory."""
    rng = np.random.default_rng(size * 5 + pad)
    h = size - 2 * pad + stride * 3
    layer = L.MaxPool2D(size, stride, pad, np)
    for _ in range(2):
        x = rng.integers(0, 3, (2, 3, h, h)).astype(np.float64)  # few values: many ties
        expected, routing = naive_pool(x, size, stride, pad)
        np.testing.assert_array_equal(layer.forward(x, train=True), expected)
        dout = rng.standard_normal(expected.shape)
        np.testing.assert_array_equal(layer.backward(dout), _route(routing, dout, size, stride, pad))


def _route(first_max, dout, size, stride, pad):
    """The input gradient from naive_pool's 0/1 first-maximum map and dout, by loops."""
    n, c, h, w = first_max.shape
    padded = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    padded[:, :, pad:pad + h, pad:pad + w] = first_max
    dx = np.zeros_like(padded)
    for y in range(dout.shape[2]):
        for z in range(dout.shape[3]):
            rows, cols = slice(y * stride, y * stride + size), slice(z * stride, z * stride + size)
            dx[:, :, rows, cols] += padded[:, :, rows, cols] * dout[:, :, y, z][:, :, None, None]
    return dx[:, :, pad:pad + h, pad:pad + w]


def test_conv_steps_are_bit_identical_run_to_run():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((9, 2, 8, 8)).astype(np.float32)
    W, b = rng.standard_normal((4, 2, 3, 3)).astype(np.float32), np.zeros(4, np.float32)
    runs = []
    for _ in range(2):
        layer = L.Conv2D(W.copy(), b.copy(), stride=1, pad=1, xp=np)
        layer._block_bytes = SMALL_BLOCK
        out = layer.forward(x, train=True).copy()
        dx = layer.backward(np.ones_like(out)).copy()
        runs.append((out, dx, layer.grads["W"].copy(), layer.grads["b"].copy()))
    for first, second in zip(*runs):
        np.testing.assert_array_equal(first, second)


def test_training_results_reuse_memory_but_eval_results_are_new_arrays():
    layer = L.ReLU()
    x = np.random.default_rng(0).standard_normal((4, 6))
    first = layer.forward(x, train=True)
    assert np.shares_memory(layer.forward(x + 1, train=True), first)
    a, b = layer.forward(x, train=False), layer.forward(x + 1, train=False)
    assert not np.shares_memory(a, b)
    np.testing.assert_array_equal(a, np.maximum(x, 0))


def test_network_keeps_parameters_and_gradients_in_one_array_each():
    net = nncore.build({"preset": "simple_convnet", "filters": 3, "hidden": 8}, (1, 28, 28), 10)
    assert isinstance(net.params, FlatTensors) and same_layout(net.params, net.grads)
    for name, p in net.params.items():
        assert np.shares_memory(p, net.params.flat), name
    conv = net.layers[0]
    assert conv.params["W"] is net.params["0.W"] and conv.grads["W"] is net.grads["0.W"]
    assert net.params.flat.size == sum(p.size for p in net.params.values())


def test_first_trainable_layer_skips_its_input_gradient():
    net = nncore.build({"layers": [{"type": "dropout", "rate": 0.1}, {"type": "affine", "units": 4},
                                   {"type": "relu"}, {"type": "affine", "units": 3}]}, (5,), 3)
    assert [layer.needs_input_grad for layer in net.layers] == [True, False, True, True]
    x, t = np.random.default_rng(0).random((6, 5), dtype=np.float32), np.arange(6) % 3
    grads = net.gradient(x, t)
    assert net.layers[1].backward(np.ones((6, 4), np.float32)) is None
    assert set(grads) == {"1.W", "1.b", "3.W", "3.b"}


def test_a_layer_that_makes_its_own_gradient_array_still_reaches_the_flat_buffer():
    net = nncore.build({"preset": "mlp", "hidden": [4]}, (3,), 2, dtype="float64")
    x, t = np.random.default_rng(1).random((5, 3)), np.array([0, 1, 1, 0, 1])
    expected = {k: g.copy() for k, g in net.gradient(x, t).items()}
    affine = net.layers[0]
    original = affine.backward

    def replacing(dout):
        result = original(dout)
        affine.grads["W"] = affine.grads["W"].copy()  # no longer the network's view
        return result

    affine.backward = replacing
    grads = net.gradient(x, t)
    np.testing.assert_array_equal(grads["0.W"], expected["0.W"])
    assert affine.grads["W"] is net.grads["0.W"]


@pytest.mark.parametrize("kind", sorted(nncore.OPTIMIZERS))
def test_flat_and_per_tensor_steps_are_bit_identical_and_share_state_names(kind):
    rng = np.random.default_rng(0)
    shapes = {"0.W": (4, 3), "0.b": (3,), "2.gamma": (3,)}
    flat_p = FlatTensors(shapes, np, np.float32)
    flat_g = FlatTensors.like(flat_p)
    for name, shape in shapes.items():
        flat_p[name][...] = rng.standard_normal(shape)
    plain_p = {name: p.copy() for name, p in flat_p.items()}
    flat_opt = nncore.make_optimizer({"type": kind, "lr": 0.05})
    plain_opt = nncore.make_optimizer({"type": kind, "lr": 0.05})
    for _ in range(3):
        for name, shape in shapes.items():
            flat_g[name][...] = rng.standard_normal(shape)
        flat_opt.update(flat_p, flat_g)
        plain_opt.update(plain_p, {name: g.copy() for name, g in flat_g.items()})
    for name in shapes:
        np.testing.assert_array_equal(flat_p[name], plain_p[name])
    flat_state, plain_state = flat_opt.state_dict(), plain_opt.state_dict()
    assert set(flat_state) == set(plain_state)
    for key in flat_state:
        np.testing.assert_array_equal(flat_state[key], plain_state[key])


def test_state_loaded_per_tensor_continues_in_the_flat_layout():
    rng = np.random.default_rng(2)
    shapes = {"a": (3, 2), "b": (2,)}
    params = FlatTensors(shapes, np, np.float64)
    grads = FlatTensors.like(params)
    opt = nncore.make_optimizer({"type": "adam", "lr": 0.01})
    steps = [{n: rng.standard_normal(s) for n, s in shapes.items()} for _ in range(4)]
    for step in steps[:2]:
        for n in shapes:
            grads[n][...] = step[n]
        opt.update(params, grads)
    resumed_params = FlatTensors.like(params)
    resumed_params.flat[...] = params.flat
    resumed = nncore.make_optimizer({"type": "adam", "lr": 0.01})
    resumed.load_state_dict(nncore.state_from_bytes(nncore.state_to_bytes(opt.state_dict())))
    for step in steps[2:]:
        for n in shapes:
            grads[n][...] = step[n]
        opt.update(params, grads)
        resumed.update(resumed_params, grads)
    np.testing.assert_array_equal(params.flat, resumed_params.flat)


def test_learning_rate_is_an_attribute_a_schedule_can_set():
    opt = nncore.make_optimizer({"type": "sgd", "lr": 0.1})
    p = {"w": np.array([1.0])}
    opt.update(p, {"w": np.array([1.0])})
    opt.lr = 0.5
    assert opt.hyper["lr"] == 0.5
    opt.update(p, {"w": np.array([1.0])})
    assert p["w"][0] == pytest.approx(1.0 - 0.1 - 0.5)



@pytest.mark.parametrize("pool,side", [({"type": "maxpool", "size": 2}, 8),
                                       ({"type": "maxpool", "size": 3, "stride": 2, "pad": 1}, 9)])
def test_relu_before_a_max_pool_runs_after_it_with_the_same_bits(pool, side):
    """The swapped pass gives every loss, gradient and prediction bit for bit, signed zeros
    included, also where windows tie (a flat background) or hold no positive value."""
    layers = [{"type": "conv", "filters": 4, "size": 3, "pad": 1}, {"type": "relu"}, pool,
              {"type": "affine", "units": 6}, {"type": "relu"}, {"type": "affine", "units": 3}]
    swapped = nncore.build({"layers": layers}, (2, side, side), 3, seed=1)
    written = nncore.build({"layers": layers}, (2, side, side), 3, seed=1)
    written.pass_order = list(range(len(written.layers)))
    assert swapped.pass_order == [0, 2, 1, 3, 4, 5]
    rng = np.random.default_rng(5)
    x = rng.standard_normal((7, 2, side, side)).astype(np.float32)
    x[:3, :, :5, :5] = 0.25   # equal windows: ties
    x[3:5] = -np.abs(x[3:5])  # windows with no positive conv output are likely
    t = np.arange(7) % 3
    for net in (swapped, written):
        net.layers[0].params["b"][...] = [0.0, -2.0, 0.5, -0.1]
    expected = {k: v.copy() for k, v in written.gradient(x, t).items()}
    got = swapped.gradient(x, t)
    assert swapped.last_loss == written.last_loss
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name].view(np.uint32), value.view(np.uint32), err_msg=name)
    np.testing.assert_array_equal(swapped.predict(x), written.predict(x))


def test_pass_order_swaps_only_a_relu_right_before_a_max_pool():
    layers = [{"type": "conv", "filters": 2, "size": 3}, {"type": "relu"}, {"type": "maxpool"},
              {"type": "conv", "filters": 2, "size": 3, "pad": 1}, {"type": "maxpool"}, {"type": "relu"},
              {"type": "sigmoid"}, {"type": "affine", "units": 3}]
    assert nncore.build({"layers": layers}, (1, 14, 14), 3).pass_order == [0, 2, 1, 3, 4, 5, 6, 7]
