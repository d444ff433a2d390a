"""ONNX parity: how far onnxruntime's probabilities are from the predict endpoint's.

For every preset and an explicit-layers network it trains one epoch on Fashion-MNIST
(synthetic data of the same shape when the files are missing) as a worker does — a job in a
fresh SQLite store, run by ``workers.train.run_job`` — then downloads ``model.onnx``, runs it
with onnxruntime on the first IMAGES test images, sends the same images to
``POST /models/{id}/predict``, and prints the largest absolute difference per network
(the test suite demands at most 1e-5 in float32).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/onnx_parity.py \
        [--dataset synthetic] [--train-limit N]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = 100
UNREACHABLE_BROKER = "redis://127.0.0.1:1/0"  # nothing is enqueued: run_job trains here
NETWORKS = {
    "mlp (BatchNorm, dropout)": {"preset": "mlp", "hidden": [100, 100, 100],
                                 "batchnorm": True, "dropout": 0.15},
    "simple_convnet": {"preset": "simple_convnet", "batchnorm": True},
    "deep_convnet": {"preset": "deep_convnet", "batchnorm": True},
    "explicit layers": {"layers": [
        {"type": "conv", "filters": 16, "size": 3, "pad": 1}, {"type": "batchnorm"},
        {"type": "relu"}, {"type": "maxpool", "size": 2},
        {"type": "affine", "units": 100}, {"type": "tanh"}, {"type": "dropout", "rate": 0.5},
        {"type": "affine", "units": 10}]},
}


def _npy(array) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def parity(client, store, sessions, run_job, name: str, model: dict, dataset: str,
           train_limit: int) -> float:
    import numpy as np
    import onnxruntime

    import nncore

    spec = {"name": name, "data": {"dataset": dataset, "train_limit": train_limit},
            "model": model, "train": {"epochs": 1, "batch_size": 100, "seed": 0}}
    with sessions() as session:
        job_id = store.create_job(session, nncore.parse_spec(spec).document())[0].id
    run_job(job_id)
    model_id = client.get(f"/api/v1/jobs/{job_id}").get_json()["model_id"]
    if model_id is None:
        raise SystemExit(f"{name}: {client.get(f'/api/v1/jobs/{job_id}').get_json()['error']}")
    stored = client.get(f"/api/v1/models/{model_id}").get_json()
    x = nncore.load_dataset(dataset, flatten=len(stored["input_shape"]) == 1,
                            train_limit=1).x_test[:IMAGES]
    graph = client.get(f"/api/v1/models/{model_id}/model.onnx").data
    session = onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])
    [exported] = session.run(None, {"input": x})
    served = client.post(f"/api/v1/models/{model_id}/predict", data=_npy(x),
                         content_type="application/octet-stream").get_json()["probabilities"]
    return float(np.abs(exported - np.asarray(served)).max())


def main() -> None:
    import workers  # noqa: F401 - first: sets the worker's BLAS thread count before numpy loads

    return report()


def report() -> None:
    import onnxruntime

    import nncore

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist", choices=("fashion-mnist", "mnist",
                                                                     "synthetic"))
    parser.add_argument("--train-limit", type=int, default=2000)
    args = parser.parse_args()
    dataset = args.dataset
    try:
        nncore.load_dataset(dataset, train_limit=1)
    except nncore.DataError as exc:
        print(f"{exc}; using synthetic data", file=sys.stderr)
        dataset = "synthetic"

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/parity.db"
        os.environ.update(NNQ_DATABASE_URL=url, NNQ_BROKER_URL=UNREACHABLE_BROKER)
        sys.path.insert(0, str(ROOT))
        from service import create_app
        from service.db import jobs as store
        from service.db import session_factory
        from tests.support import migrate
        from workers.train import run_job

        migrate(url)
        client = create_app({"NNQ_DATABASE_URL": url}).test_client()
        print(f"{dataset}, one epoch on {args.train_limit} images, float32, "
              f"{IMAGES} test images; onnxruntime {onnxruntime.__version__}")
        for name, model in NETWORKS.items():
            diff = parity(client, store, session_factory(url), run_job, name, model, dataset,
                          args.train_limit)
            print(f"{name:28s} max |onnxruntime - predict| = {diff:.3g}")


if __name__ == "__main__":
    main()
