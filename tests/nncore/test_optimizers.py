"""Each optimizer's first two steps against values computed by hand from its update rule."""
import math

import numpy as np
import pytest

import nncore

P0, G1, G2 = 1.0, 0.5, -0.25  # one scalar parameter, two successive gradients


def by_hand(kind):
    """The parameter after two steps, written out with plain floats."""
    lr = 0.1
    if kind == "sgd":
        return P0 - lr * G1 - lr * G2
    if kind == "momentum":
        v1 = G1
        v2 = 0.9 * v1 + G2
        return P0 - lr * v1 - lr * v2
    if kind == "nesterov":
        v1 = G1
        p1 = P0 - lr * (G1 + 0.9 * v1)
        v2 = 0.9 * v1 + G2
        return p1 - lr * (G2 + 0.9 * v2)
    if kind == "adagrad":
        h1 = G1 ** 2
        p1 = P0 - lr * G1 / (math.sqrt(h1) + 1e-10)
        h2 = h1 + G2 ** 2
        return p1 - lr * G2 / (math.sqrt(h2) + 1e-10)
    if kind == "rmsprop":
        h1 = 0.01 * G1 ** 2
        p1 = P0 - lr * G1 / (math.sqrt(h1) + 1e-8)
        h2 = 0.99 * h1 + 0.01 * G2 ** 2
        return p1 - lr * G2 / (math.sqrt(h2) + 1e-8)
    if kind == "adam":
        p, m, v = P0, 0.0, 0.0
        for t, g in ((1, G1), (2, G2)):
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            p -= lr / (1 - 0.9 ** t) * m / (math.sqrt(v) / math.sqrt(1 - 0.999 ** t) + 1e-8)
        return p
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_two_steps_match_the_hand_computed_value(kind):
    params = {"w": np.array([P0])}
    opt = nncore.make_optimizer({"type": kind, "lr": 0.1})
    for g in (G1, G2):
        opt.update(params, {"w": np.array([g])})
    assert params["w"][0] == pytest.approx(by_hand(kind), rel=1e-12)


@pytest.mark.parametrize("kind", ["momentum", "adam", "rmsprop"])
def test_state_dict_round_trip_continues_identically(kind):
    rng = np.random.default_rng(0)
    grads = [{"a.W": rng.standard_normal((3, 2))} for _ in range(4)]
    a = {"a.W": np.ones((3, 2))}
    opt = nncore.make_optimizer({"type": kind, "lr": 0.01})
    for g in grads[:2]:
        opt.update(a, g)
    b = {"a.W": a["a.W"].copy()}
    restored = nncore.make_optimizer({"type": kind, "lr": 0.01})
    restored.load_state_dict(nncore.state_from_bytes(nncore.state_to_bytes(opt.state_dict())))
    for g in grads[2:]:
        opt.update(a, g)
        restored.update(b, g)
    np.testing.assert_array_equal(a["a.W"], b["a.W"])


def test_update_is_in_place():
    w = np.ones(3, dtype=np.float32)
    params = {"w": w}
    nncore.make_optimizer({"type": "adam"}).update(params, {"w": np.ones(3, dtype=np.float32)})
    assert params["w"] is w and w.dtype == np.float32 and (w < 1).all()


@pytest.mark.parametrize("spec", [{"type": "adamw"}, {"type": "adam", "lr": -1}, {"type": "sgd", "beta": 1}])
def test_bad_optimizer_specs_are_refused(spec):
    with pytest.raises(ValueError):
        nncore.make_optimizer(spec)
