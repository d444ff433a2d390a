"""Every `nnq.Client` method against the real API over HTTP, a real worker, Redis and the
test's database (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from nnq import Alias, Conflict, Job, Metrics, Model, NotFound
from nnq.client import MAX_PREDICT_SAMPLES
from nnq.status import JobStatus
from tests.client.conftest import TINY_SPEC, WAIT_S, spec

pytestmark = pytest.mark.integration

ESCAPED = "&lt;b&gt;tiny&lt;/b&gt;"
BATCHED_SAMPLES = 2500


@pytest.mark.timeout(300)
def test_jobs_models_and_predict(client, worker, tmp_path):
    worker()
    job = client.submit(TINY_SPEC, idempotency_key="tiny-1")
    assert isinstance(job, Job) and job.status == JobStatus.QUEUED
    assert isinstance(job.created_at, dt.datetime) and job.progress.epoch == 0
    assert client.submit(TINY_SPEC, idempotency_key="tiny-1").id == job.id
    with pytest.raises(Conflict, match="Idempotency-Key"):
        client.submit(spec(name="another"), idempotency_key="tiny-1")

    assert job.wait(timeout=WAIT_S, progress=False) is job
    assert job.status == JobStatus.SUCCEEDED and job.model_id is not None
    assert job.progress.epoch == 2 and job.finished_at is not None
    assert "<b>tiny</b>" in repr(job) and "succeeded" in repr(job)
    html = job._repr_html_()
    assert ESCAPED in html and "<b>tiny</b>" not in html

    assert client.job(job.id).to_dict() == job.to_dict()
    assert job.id in [j.id for j in client.jobs(name="<b>tiny</b>")]
    assert job.id in [j.id for j in client.jobs(status="succeeded", limit=5)]
    assert client.jobs(status="failed") == []

    metrics = job.metrics()
    assert isinstance(metrics, Metrics) and metrics.job_id == job.id
    assert [row.epoch for row in metrics] == [1, 2]
    assert 0.0 <= metrics[-1].test_acc <= 1.0
    frame = metrics.to_dataframe()
    assert list(frame.columns) == ["epoch", "train_loss", "train_acc", "val_acc", "test_acc",
                                   "seconds"]
    assert frame["test_acc"].tolist() == [row.test_acc for row in metrics]
    figure = job.plot()
    assert isinstance(figure, Figure)
    assert [line.get_label() for line in figure.axes[0].lines] == ["train_acc", "val_acc",
                                                                   "test_acc"]

    with pytest.raises(Conflict, match="already"):
        client.cancel(job.id)

    model = job.model()
    assert isinstance(model, Model) and model.job_id == job.id
    assert model.input_shape == [784] and model.num_classes == 10
    assert model.id in [m.id for m in client.models()]
    assert client.models()[0].tensors is None and model.tensors
    assert ESCAPED in model._repr_html_() and "<b>" not in model._repr_html_()
    assert f"id={model.id}" in repr(model)

    alias = client.set_alias("tiny-best", model.id)
    assert isinstance(alias, Alias) and alias.model_id == model.id
    assert client.model("tiny-best").id == model.id
    assert "tiny-best" in client.model(model.id).aliases

    state = client.download_state("tiny-best")
    assert set(state) == {t.name for t in model.tensors}
    assert any("running_mean" in name for name in state)
    for tensor in model.tensors:
        assert list(state[tensor.name].shape) == tensor.shape

    x = np.random.default_rng(0).random((BATCHED_SAMPLES, 784), dtype=np.float32)
    before = client.transport.attempts
    labels, probabilities = client.predict("tiny-best", x)
    assert client.transport.attempts - before == 3
    assert labels.shape == (BATCHED_SAMPLES,) and probabilities.shape == (BATCHED_SAMPLES, 10)
    direct = [client.predict(model.id, x[start:start + MAX_PREDICT_SAMPLES])
              for start in range(0, BATCHED_SAMPLES, MAX_PREDICT_SAMPLES)]
    assert np.array_equal(labels, np.concatenate([d[0] for d in direct]))
    assert np.allclose(probabilities, np.concatenate([d[1] for d in direct]))
    assert np.array_equal(labels, probabilities.argmax(axis=1))

    one_label, one_probs = model.predict(x[0].reshape(1, 28, 28))
    assert one_label.tolist() == [labels[0]] and np.allclose(one_probs[0], probabilities[0])
    image = (np.arange(28 * 28).reshape(28, 28) % 256).astype(np.uint8)
    Image.fromarray(image, mode="L").save(tmp_path / "sample.png")
    png_labels, png_probs = client.predict(model.id, tmp_path / "sample.png")
    assert png_labels.shape == (1,) and png_probs.shape == (1, 10)
    np.save(tmp_path / "x.npy", x[:3], allow_pickle=False)
    assert client.predict(model.id, str(tmp_path / "x.npy"))[0].tolist() == labels[:3].tolist()

    with pytest.raises(NotFound):
        client.model("no-such-model")


@pytest.mark.timeout(300)
def test_sweeps_and_promote(client, worker):
    worker()
    request = {"name": "<i>quick</i>", "base": spec(name="trial"),
               "space": {"train.optimizer.lr": {"grid": [0.01, 0.001]}},
               "strategy": "grid", "parallelism": 2, "metric": "val_acc"}
    sweep = client.submit_sweep(request, idempotency_key="sweep-1")
    assert client.submit_sweep(request, idempotency_key="sweep-1").id == sweep.id
    assert sweep.wait(timeout=WAIT_S, progress=False) is sweep
    assert sweep.status == "succeeded" and sweep.counts["succeeded"] == 2
    assert len(sweep.trials) == 2 and sweep.best is not None
    assert sweep.best.model_id is not None
    assert "<i>quick</i>" in repr(sweep)
    html = sweep._repr_html_()
    assert "&lt;i&gt;quick&lt;/i&gt;" in html and "<i>" not in html

    listed = client.sweeps(status="succeeded")
    assert [s.id for s in listed] == [sweep.id] and listed[0].trials is None
    assert listed[0].refresh().trials == sweep.trials
    trial_jobs = client.jobs(sweep_id=sweep.id)
    assert sorted(j.id for j in trial_jobs) == sorted(t.job_id for t in sweep.trials)

    promotion = sweep.promote("best-quick")
    assert promotion.alias == "best-quick" and promotion.model_id == sweep.best.model_id
    assert promotion.trial.index == sweep.best.index
    assert client.model("best-quick").id == sweep.best.model_id

    figure = sweep.plot()
    assert isinstance(figure, Figure)
    scatter, curves = figure.axes[:2]
    assert len(curves.lines) == 2 and scatter.get_xlabel() == "train.optimizer.lr"

    with pytest.raises(Conflict):
        client.cancel_sweep(sweep.id)
