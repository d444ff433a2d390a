"""GET /models/{ref}/model.onnx: every preset and an explicit-layers model, trained and stored
as a worker does, exported, checked by ``onnx.checker`` and run by onnxruntime on 100 test
images; its probabilities equal the predict endpoint's within 1e-5 (float32)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from sqlalchemy import update

import nncore
from nncore.layers import LAYERS
from nncore.onnx_export import EXPORTERS, INPUT_NAME, OUTPUT_NAME
from service.db.models import ModelTensor
from tests.lineage.conftest import lineage, predict

PARITY = 1e-5
IMAGES = 100
# 100 test images: the synthetic set's test split is a fifth of its samples; training stays
# on a few batches so that deep_convnet takes seconds.
DATA = {"dataset": "synthetic", "samples": 5 * IMAGES, "train_limit": 40, "seed": 4}
TRAIN = {"epochs": 1, "batch_size": 20, "optimizer": {"type": "adam", "lr": 0.01}, "seed": 2}
MODELS = {
    "mlp": {"preset": "mlp", "hidden": [32, 16], "batchnorm": True, "dropout": 0.3},
    "mlp-tanh": {"preset": "mlp", "hidden": [16], "activation": "tanh", "init": "xavier"},
    "simple_convnet": {"preset": "simple_convnet", "filters": 8, "hidden": 32,
                       "batchnorm": True},
    "deep_convnet": {"preset": "deep_convnet", "batchnorm": True},
    "explicit": {"layers": [
        {"type": "conv", "filters": 4, "size": 3, "stride": 1, "pad": 1},
        {"type": "batchnorm"}, {"type": "sigmoid"},
        {"type": "maxpool", "size": 3, "stride": 1, "pad": 1},
        {"type": "conv", "filters": 4, "size": 2, "stride": 2}, {"type": "relu"},
        {"type": "flatten"}, {"type": "affine", "units": 20}, {"type": "batchnorm"},
        {"type": "tanh"}, {"type": "dropout", "rate": 0.5},
        {"type": "affine", "units": 10}]},
}


@pytest.fixture(params=["sqlite"])
def database_url(request, tmp_path):
    """SQLite only: the export reads tensors through the same store on both databases, and
    the lineage tests cover PostgreSQL."""
    from tests.support import migrate

    url = f"sqlite:///{tmp_path / 'nnq.db'}"
    migrate(url)
    return url


def test_every_layer_type_has_an_onnx_form():
    assert set(LAYERS) <= set(EXPORTERS)


@pytest.mark.parametrize("kind", list(MODELS))
def test_onnxruntime_equals_the_predict_endpoint(kind, client, train):
    job = train({"name": f"onnx-{kind}", "data": DATA, "train": TRAIN, "model": MODELS[kind]})
    model_id = job["model_id"]
    response = client.get(f"/api/v1/models/{model_id}/model.onnx")
    assert response.status_code == 200, response.get_json()
    graph = onnx.load_from_string(response.data)
    onnx.checker.check_model(graph, full_check=True)
    info = lineage(client, model_id)["onnx"]
    assert (info["input_name"], info["output_name"]) == (INPUT_NAME, OUTPUT_NAME)

    model = client.get(f"/api/v1/models/{model_id}").get_json()
    assert info["input_shape"] == ["batch", *model["input_shape"]]
    x = nncore.load_dataset("synthetic", flatten=len(model["input_shape"]) == 1,
                            samples=DATA["samples"], seed=DATA["seed"]).x_test[:IMAGES]
    session = onnxruntime.InferenceSession(response.data, providers=["CPUExecutionProvider"])
    [exported] = session.run([OUTPUT_NAME], {INPUT_NAME: x})
    served = predict(client, model_id, x)
    assert exported.shape == served.shape == (IMAGES, 10)
    assert np.abs(exported - served).max() <= PARITY


def test_a_tensor_failing_its_sha256_is_a_409_naming_it(client, train, sessions):
    job = train({"name": "onnx-corrupt", "data": DATA, "train": TRAIN, "model": MODELS["mlp"]})
    with sessions() as session:
        session.execute(update(ModelTensor).where(ModelTensor.model_id == job["model_id"],
                                                  ModelTensor.name == "1.running_var")
                        .values(data=b"\0" * 64))
        session.commit()
    response = client.get(f"/api/v1/models/{job['model_id']}/model.onnx")
    assert response.status_code == 409
    assert "'1.running_var'" in response.get_json()["error"]["message"]
