"""Models over HTTP: read, state download, aliases, and predictions that equal the
network's own eval-mode numbers bit for bit for JSON, .npy and PNG input."""

from __future__ import annotations

import io

import numpy as np

import nncore
from nncore.data.datasets import PIXEL_SCALE
from tests.service.conftest import MODEL_SPEC, npy, png, store_model

N = 7


def probabilities(response, dtype=np.float32) -> np.ndarray:
    assert response.status_code == 200, response.get_data(as_text=True)
    return np.asarray(response.get_json()["probabilities"], dtype=dtype)


def assert_bits_equal(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got.view(np.uint32 if got.dtype == np.float32 else np.uint64),
                          want.view(np.uint32 if want.dtype == np.float32 else np.uint64))


def test_model_resource_lists_layers_metrics_and_every_tensor(client, trained):
    model_id, net = trained
    model = client.get(f"/api/v1/models/{model_id}").get_json()
    assert model["id"] == model_id and model["job_id"] is not None
    assert model["input_shape"] == [784] and model["num_classes"] == 10
    assert model["dtype"] == "float32" and model["metrics"] == {"test_acc": 0.5}
    assert model["layers"] == net.layers_spec
    tensors = {t["name"]: t for t in model["tensors"]}
    assert set(tensors) == set(net.params) | set(net.buffers)
    for name in ("1.running_mean", "1.running_var", "5.running_mean", "5.running_var"):
        assert tensors[name]["role"] == "buffer"
    assert tensors["1.gamma"]["role"] == "param" and tensors["0.W"]["shape"] == [784, 32]
    assert all(len(t["sha256"]) == 64 for t in model["tensors"])
    listed = client.get("/api/v1/models").get_json()
    assert [m["id"] for m in listed["items"]] == [model_id] and listed["total"] == 1


def test_state_npz_rebuilds_the_same_network(client, trained):
    model_id, net = trained
    r = client.get(f"/api/v1/models/{model_id}/state.npz")
    assert r.status_code == 200
    state = nncore.state_from_bytes(r.data)
    for name, array in net.state_dict().items():
        assert_bits_equal(state[name], array)
    with np.load(io.BytesIO(r.data), allow_pickle=False) as npz:
        assert set(npz.files) == set(net.state_dict())
    model = client.get(f"/api/v1/models/{model_id}").get_json()
    rebuilt = nncore.build({"layers": model["layers"]}, tuple(model["input_shape"]),
                           model["num_classes"], dtype=model["dtype"])
    rebuilt.load_state_dict(state)
    x = np.random.default_rng(0).random((5, 784), dtype=np.float32)
    assert_bits_equal(rebuilt.predict_proba(x), net.predict_proba(x))


def test_predict_json_equals_network_bit_for_bit(client, trained, synthetic):
    model_id, net = trained
    x = synthetic.x_test[:N]
    r = client.post(f"/api/v1/models/{model_id}/predict", json={"inputs": x.tolist()})
    want = net.predict_proba(x)
    assert_bits_equal(probabilities(r), want)
    assert r.get_json()["labels"] == want.argmax(axis=1).tolist()
    assert r.get_json()["model_id"] == model_id
    shaped = client.post(f"/api/v1/models/{model_id}/predict",
                         json={"inputs": x.reshape(N, 1, 28, 28).tolist()})
    assert_bits_equal(probabilities(shaped), want)
    single = client.post(f"/api/v1/models/{model_id}/predict", json={"inputs": x[0].tolist()})
    assert_bits_equal(probabilities(single), net.predict_proba(x[:1]))


def test_predict_npy_equals_network_bit_for_bit(client, trained, synthetic):
    model_id, net = trained
    x = synthetic.x_test[:N]
    for content_type in ("application/x-npy", "application/octet-stream"):
        r = client.post(f"/api/v1/models/{model_id}/predict", data=npy(x),
                        content_type=content_type)
        assert_bits_equal(probabilities(r), net.predict_proba(x))


def test_predict_png_scales_pixels_like_the_datasets(client, trained):
    model_id, net = trained
    pixels = np.random.default_rng(1).integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    x = np.empty(pixels.shape, np.float32)
    np.multiply(pixels, PIXEL_SCALE, out=x)
    want = net.predict_proba(x.reshape(3, 784))
    one = client.post(f"/api/v1/models/{model_id}/predict",
                      data={"image": (png(pixels[0]), "a.png")}, content_type="multipart/form-data")
    assert_bits_equal(probabilities(one), net.predict_proba(x[:1].reshape(1, 784)))
    many = client.post(f"/api/v1/models/{model_id}/predict",
                       data={"image": [(png(p), f"{i}.png") for i, p in enumerate(pixels)]},
                       content_type="multipart/form-data")
    assert_bits_equal(probabilities(many), want)


def test_predict_float64_model(client, sessions, synthetic):
    net = nncore.build(MODEL_SPEC, (784,), 10, seed=2, dtype="float64")
    net.gradient(synthetic.x_train[:20].astype(np.float64), synthetic.t_train[:20])
    model_id = store_model(sessions, net, synthetic)
    x = synthetic.x_test[:N]
    r = client.post(f"/api/v1/models/{model_id}/predict", json={"inputs": x.tolist()})
    assert_bits_equal(probabilities(r, np.float64), net.predict_proba(x.astype(np.float64)))


def test_aliases_point_at_models_and_can_move(client, trained, sessions, synthetic):
    first_id, first = trained
    second = nncore.build(MODEL_SPEC, (784,), 10, seed=99)
    second_id = store_model(sessions, second, synthetic)
    r = client.put("/api/v1/models/aliases/production", json={"model_id": first_id})
    assert r.status_code == 200 and r.get_json()["model_id"] == first_id
    assert client.get("/api/v1/models/production").get_json()["id"] == first_id
    assert client.get(f"/api/v1/models/{first_id}").get_json()["aliases"] == ["production"]
    x = synthetic.x_test[:N]
    r = client.post("/api/v1/models/production/predict", json={"inputs": x.tolist()})
    assert_bits_equal(probabilities(r), first.predict_proba(x))
    client.put("/api/v1/models/aliases/production", json={"model_id": second_id})
    r = client.post("/api/v1/models/production/predict", json={"inputs": x.tolist()})
    assert r.get_json()["model_id"] == second_id
    assert_bits_equal(probabilities(r), second.predict_proba(x))
    models = {m["id"]: m["aliases"] for m in client.get("/api/v1/models").get_json()["items"]}
    assert models == {first_id: [], second_id: ["production"]}
