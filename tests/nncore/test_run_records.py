"""What an epoch records besides its metrics: kept per-iteration losses and the per-layer
activation statistics of a fixed probe batch (the lecture's histograms)."""

import numpy as np
import pytest

import nncore
from nncore import TrainingRun
from nncore.network import FIXED_RANGES, HISTOGRAM_BINS, output_statistics
from nncore.training import MAX_LOSS_POINTS, PROBE_SIZE, loss_stride, probe_batch

from .test_training import assert_same_state, job

CONVNET = {"preset": "simple_convnet", "filters": 4, "size": 5, "hidden": 16,
           "batchnorm": True}
SIGMOID_DEPTH = 5
SIGMOID_WIDTH = 100
FLOAT32_REL = 1e-5  # statistics summed in the layer's float32
SQUEEZE = 5  # std 0.01 leaves deep sigmoid outputs at least this many times narrower


def fit_with_records(run, **callbacks):
    records = []
    run.fit(on_epoch=lambda _row, record: records.append(record), **callbacks)
    return records


def manual_outputs(net, x):
    """Each layer's eval-mode output, computed layer by layer outside Network."""
    outputs, out = [], np.asarray(x, net.dtype)
    for layer in net.layers:
        out = layer.forward(out, train=False)
        outputs.append(out)
    return outputs


@pytest.mark.parametrize("model", [
    {"preset": "mlp", "hidden": [16, 8], "batchnorm": True, "dropout": 0.2},
    CONVNET,
], ids=["mlp", "convnet"])
def test_activation_stats_cover_every_layer_before_the_logits_and_match_numpy(model):
    data = nncore.load_dataset("synthetic", samples=200, seed=1,
                               flatten=model["preset"] == "mlp")
    net = nncore.build(model, data.input_shape, data.num_classes, seed=2)
    probe = data.x_val[:20]
    stats = net.activation_stats(probe)
    assert [s["layer"] for s in stats] == list(range(len(net.layers) - 1))
    outputs = manual_outputs(net, probe)
    for s, spec, out in zip(stats, net.layers_spec, outputs):
        assert s["name"] == f"{s['layer']} {spec['type']}" and s["type"] == spec["type"]
        assert len(s["edges"]) == len(s["counts"]) + 1 == HISTOGRAM_BINS + 1
        assert sum(s["counts"]) == out.size
        assert s["mean"] == pytest.approx(float(out.astype(np.float64).mean()), rel=FLOAT32_REL,
                                          abs=FLOAT32_REL)
        assert s["std"] == pytest.approx(float(out.astype(np.float64).std()), rel=FLOAT32_REL)
        if s["type"] not in FIXED_RANGES:
            assert (s["edges"][0], s["edges"][-1]) == (float(out.min()), float(out.max()))


def test_deep_convnet_stats_stop_before_the_logits_and_its_dropout():
    net = nncore.build({"preset": "deep_convnet"}, (1, 28, 28), 10)
    assert [s["type"] for s in net.layers_spec[-2:]] == ["affine", "dropout"]
    assert net.hidden_layers() == len(net.layers) - 2


def test_bounded_activations_get_their_fixed_range_and_a_constant_output_still_bins():
    for kind, (low, high) in FIXED_RANGES.items():
        stats = output_statistics(np.full((4, 3), 0.25), kind)
        assert (stats["edges"][0], stats["edges"][-1]) == (low, high)
    dead = output_statistics(np.zeros((8, 5)), "relu")
    assert dead["edges"][0] < 0.0 < dead["edges"][-1] and sum(dead["counts"]) == 40
    assert dead["mean"] == dead["std"] == 0.0


def test_non_finite_outputs_fall_outside_the_bins_instead_of_raising():
    values = np.array([[1.0, 2.0], [np.nan, np.inf]], np.float32)
    stats = output_statistics(values, "relu", bins=4)
    assert (stats["edges"][0], stats["edges"][-1]) == (1.0, 2.0) and sum(stats["counts"]) == 2
    assert np.isnan(stats["mean"])  # stored as null
    overflowed = output_statistics(np.full((2, 2), np.nan), "relu")
    assert sum(overflowed["counts"]) == 0 and len(overflowed["edges"]) == HISTOGRAM_BINS + 1


def test_small_std_init_squeezes_deep_sigmoid_activations_but_xavier_does_not():
    """The lecture's figure: with std 0.01 every sigmoid layer outputs about 0.5; Xavier keeps
    a spread through the depth."""
    x = np.random.default_rng(0).random((200, 784))
    spread = {}
    for init in ("std", "xavier"):
        net = nncore.build({"preset": "mlp", "hidden": [SIGMOID_WIDTH] * SIGMOID_DEPTH,
                            "activation": "sigmoid", "init": init}, (784,), 10, seed=0)
        sigmoids = [s for s in net.activation_stats(x) if s["type"] == "sigmoid"]
        assert len(sigmoids) == SIGMOID_DEPTH
        spread[init] = sigmoids[-1]["std"]
    assert spread["std"] * SQUEEZE < spread["xavier"]


def test_activation_stats_leave_training_bit_for_bit_unchanged():
    spec = job(epochs=2)
    plain, probed = TrainingRun.from_spec(spec), TrainingRun.from_spec(spec)
    plain.fit(on_epoch=lambda *_: None)
    probed.fit(on_epoch=lambda *_: probed.network.activation_stats(probed.dataset.x_train))
    assert_same_state(plain.network.state_dict(), probed.network.state_dict())


def test_loss_stride_keeps_at_most_the_budget_of_strided_points():
    assert loss_stride(0) == loss_stride(MAX_LOSS_POINTS) == 1
    assert loss_stride(MAX_LOSS_POINTS + 1) == 2
    for total in (MAX_LOSS_POINTS * 3 + 7, 200 * 540):
        assert total // loss_stride(total) <= MAX_LOSS_POINTS


def test_short_runs_keep_every_iteration_loss_as_the_step_computed_it():
    run = TrainingRun.from_spec(job(epochs=2))
    seen = []
    original = run.network.gradient

    def recording_gradient(x, t):
        grads = original(x, t)
        seen.append(float(run.network.last_loss))
        return grads

    run.network.gradient = recording_gradient
    records = fit_with_records(run)
    assert run.loss_every == 1
    assert [r.epoch for r in records] == [1, 2]
    assert [i for r in records for i, _ in r.losses] == list(range(1, 11))
    assert [loss for r in records for _, loss in r.losses] == seen


def test_a_strided_run_keeps_multiples_of_the_stride_and_every_epoch_end(monkeypatch):
    monkeypatch.setattr("nncore.training.MAX_LOSS_POINTS", 4)
    run = TrainingRun.from_spec(job(epochs=3))       # 5 steps per epoch, 15 in all
    assert run.loss_every == 4
    records = fit_with_records(run)
    assert [[i for i, _ in r.losses] for r in records] == [[4, 5], [8, 10], [12, 15]]


def test_probe_is_the_first_validation_samples_else_training_samples_every_epoch():
    run = TrainingRun.from_spec(job(samples=4000, epochs=2))
    assert len(run.dataset.x_val) > PROBE_SIZE
    np.testing.assert_array_equal(probe_batch(run.dataset), run.dataset.x_val[:PROBE_SIZE])
    records = fit_with_records(run)
    assert {r.probe_size for r in records} == {PROBE_SIZE}
    no_val = job(epochs=1)
    no_val["data"]["val_fraction"] = 0.0
    run = TrainingRun.from_spec(no_val)
    np.testing.assert_array_equal(probe_batch(run.dataset), run.dataset.x_train[:PROBE_SIZE])


def test_last_epoch_stats_are_those_of_the_final_network_on_the_probe():
    run = TrainingRun.from_spec(job(epochs=2))
    records = fit_with_records(run)
    assert len(records[-1].activations) == len(run.network.layers) - 1
    assert list(records[-1].activations) == run.network.activation_stats(
        probe_batch(run.dataset))


@pytest.mark.parametrize("model", [None, CONVNET], ids=["mlp", "convnet"])
def test_a_run_resumed_mid_epoch_hands_on_the_same_records(model):
    spec = job(epochs=2)
    if model:
        spec["model"] = model
    uninterrupted = TrainingRun.from_spec(spec)
    saved = {}

    def on_iteration(progress):
        if progress["iteration"] == 7:                 # epoch 2, step 2 of 5
            saved["state"] = nncore.state_to_bytes(uninterrupted.checkpoint())

    expected = fit_with_records(uninterrupted, on_iteration=on_iteration)
    resumed = TrainingRun.from_spec(spec)
    resumed.restore(nncore.state_from_bytes(saved["state"]))
    assert fit_with_records(resumed) == expected[1:]
