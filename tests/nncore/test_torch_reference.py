"""A training step of each layer and optimizer against PyTorch (skipped when it is absent)."""
import numpy as np
import pytest

import nncore
from nncore import layers as L

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[bench]')")
torch.set_default_dtype(torch.float64)
nn = torch.nn


def t(a):
    return torch.tensor(np.array(a), requires_grad=True)


def run_step(ours, theirs, x, params):
    """Forward both on x, backward a fixed random read-out; return (out, dx, grads) pairs."""
    rng = np.random.default_rng(1)
    out = ours.forward(x, train=True)
    w = rng.standard_normal(out.shape)
    dx = ours.backward(w)
    xt = t(x)
    out_t = theirs(xt)
    (out_t * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    for ours_key, their_param in params.items():
        np.testing.assert_allclose(ours.grads[ours_key], their_param.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_affine_matches_linear():
    rng = np.random.default_rng(0)
    lin = nn.Linear(6, 4)
    ours = L.Affine(lin.weight.detach().numpy().T.copy(), lin.bias.detach().numpy().copy())
    run_step(ours, nn.Sequential(nn.Flatten(), lin), rng.standard_normal((5, 3, 2)), {"b": lin.bias})
    np.testing.assert_allclose(ours.grads["W"].T, lin.weight.grad.numpy(), rtol=1e-9)  # torch stores W^T


@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 5, 5)], ids=["per_feature", "per_channel"])
def test_batchnorm_matches_including_running_statistics(shape):
    rng = np.random.default_rng(0)
    bn = nn.BatchNorm1d(shape[1]) if len(shape) == 2 else nn.BatchNorm2d(shape[1])
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(rng.random(shape[1]) + 0.5))
        bn.bias.copy_(torch.tensor(rng.standard_normal(shape[1])))
    ours = L.BatchNorm(bn.weight.detach().numpy().copy(), bn.bias.detach().numpy().copy(),
                       np.zeros(shape[1]), np.ones(shape[1]))
    x = rng.standard_normal(shape) * 2 + 1
    run_step(ours, bn, x, {"gamma": bn.weight, "beta": bn.bias})
    np.testing.assert_allclose(ours.buffers["running_mean"], bn.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.buffers["running_var"], bn.running_var.numpy(), rtol=1e-12)
    bn.eval()
    np.testing.assert_allclose(ours.forward(x, train=False), bn(torch.tensor(x)).detach().numpy(), rtol=1e-10)


@pytest.mark.parametrize("stride,pad", [(1, 0), (1, 1), (2, 2)])
def test_conv_matches_conv2d(stride, pad):
    rng = np.random.default_rng(0)
    conv = nn.Conv2d(3, 4, 3, stride=stride, padding=pad)
    ours = L.Conv2D(conv.weight.detach().numpy().copy(), conv.bias.detach().numpy().copy(), stride=stride, pad=pad,
                    xp=np)
    size = 3 - 2 * pad + 4 * stride
    run_step(ours, conv, rng.standard_normal((2, 3, size, size)), {"W": conv.weight, "b": conv.bias})


def test_maxpool_matches():
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6))
    run_step(L.MaxPool2D(2, 2, 0, np), nn.MaxPool2d(2), x, {})
    run_step(L.MaxPool2D(3, 1, 1, np), nn.MaxPool2d(3, 1, 1), x, {})


@pytest.mark.parametrize("ours,theirs", [(L.ReLU(), nn.ReLU()), (L.Sigmoid(np), nn.Sigmoid()), (L.Tanh(np), nn.Tanh())],
                         ids=["relu", "sigmoid", "tanh"])
def test_activations_match(ours, theirs):
    run_step(ours, theirs, np.random.default_rng(0).standard_normal((4, 7)) * 3, {})


def test_softmax_cross_entropy_matches():
    rng = np.random.default_rng(0)
    scores, labels = rng.standard_normal((6, 5)) * 4, rng.integers(0, 5, 6)
    ours = L.SoftmaxCrossEntropy(np)
    st = t(scores)
    loss = nn.functional.cross_entropy(st, torch.tensor(labels))
    loss.backward()
    assert ours.forward(scores, labels) == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(ours.backward(), st.grad.numpy(), rtol=1e-10)


TORCH_OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.1),
    "momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    "nesterov": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    "adagrad": lambda p: torch.optim.Adagrad(p, lr=0.1, eps=1e-10),
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.99, eps=1e-8),
    "adam": lambda p: torch.optim.Adam(p, lr=0.01),
}


@pytest.mark.parametrize("kind", list(TORCH_OPTIMIZERS))
def test_optimizer_steps_match(kind):
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((4, 3))
    theirs = t(w0)
    opt_t = TORCH_OPTIMIZERS[kind]([theirs])
    ours = {"w": w0.copy()}
    opt = nncore.make_optimizer({"type": kind, "lr": opt_t.param_groups[0]["lr"]})
    for _ in range(5):
        g = rng.standard_normal((4, 3))
        theirs.grad = torch.tensor(g)
        opt_t.step()
        opt.update(ours, {"w": g})
    np.testing.assert_allclose(ours["w"], theirs.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_whole_network_training_step_matches():
    """mlp with BatchNorm, weight decay as L2 in the loss: one Adam step, same parameters after."""
    rng = np.random.default_rng(0)
    net = nncore.build({"preset": "mlp", "hidden": [7], "batchnorm": True}, (5,), 3, dtype="float64",
                       weight_decay=0.01)
    model = nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.ReLU(), nn.Linear(7, 3))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor(net.params["0.W"].T))
        model[0].bias.copy_(torch.tensor(net.params["0.b"]))
        model[3].weight.copy_(torch.tensor(net.params["3.W"].T))
        model[3].bias.copy_(torch.tensor(net.params["3.b"]))
    x, labels = rng.standard_normal((9, 5)), rng.integers(0, 3, 9)
    opt = nncore.make_optimizer({"type": "adam", "lr": 0.01})
    opt_t = torch.optim.Adam(model.parameters(), lr=0.01)
    opt.update(net.params, net.gradient(x, labels))
    loss = nn.functional.cross_entropy(model(torch.tensor(x)), torch.tensor(labels))
    loss = loss + 0.005 * (model[0].weight.pow(2).sum() + model[3].weight.pow(2).sum())
    assert net.last_loss == pytest.approx(loss.item(), rel=1e-12)
    loss.backward()
    opt_t.step()
    np.testing.assert_allclose(net.params["0.W"], model[0].weight.detach().numpy().T, rtol=1e-9)
    np.testing.assert_allclose(net.params["3.b"], model[3].bias.detach().numpy(), rtol=1e-9)
    np.testing.assert_allclose(net.buffers["1.running_var"], model[1].running_var.numpy(), rtol=1e-12)
