"""A job with ``keep_best`` and ``early_stopping``, trained by a real worker: the stored model
is the best epoch's, and that epoch is recorded with its own numbers."""

from __future__ import annotations

import pytest
from celery import Celery
from sqlalchemy import select

import nncore
from nnq.status import JobStatus
from service.db import EpochMetric, Model
from service.db import jobs as store
from service.db.tensors import state_from_rows
from tests.support import wait_until

pytestmark = pytest.mark.integration

HANG_GUARD_S = 120.0
# Overfits 180 samples: val_acc peaks at epoch 7, so patience 2 stops after epoch 9 of 12.
SPEC = {"name": "best-epoch",
        "data": {"dataset": "synthetic", "samples": 300, "val_fraction": 0.25},
        "model": {"preset": "mlp", "hidden": [256]},
        "train": {"epochs": 12, "batch_size": 10, "seed": 0,
                  "optimizer": {"type": "adam", "lr": 0.003},
                  "keep_best": True, "early_stopping": {"patience": 2}}}


def test_the_stored_model_is_the_best_epoch_and_says_which(sessions, worker, redis_url):
    running = worker()
    with sessions() as session:
        job_id = store.create_job(session, SPEC, "cpu")[0].id
    sender = Celery("nnq-test-client", broker=redis_url)
    sender.conf.update(task_serializer="json", accept_content=["json"])
    sender.send_task("nnq.train_job", args=[job_id], queue="cpu")
    sender.close()
    job = wait_until(f"job {job_id} to end",
                     lambda: (j := store.get_job(sessions(), job_id)).status
                     in JobStatus.FINISHED and j, [running], timeout=HANG_GUARD_S)
    assert job.status == JobStatus.SUCCEEDED, job.error

    with sessions() as session:
        rows = list(session.scalars(select(EpochMetric).where(EpochMetric.job_id == job_id)
                                    .order_by(EpochMetric.epoch)))
        model = session.scalars(select(Model).where(Model.job_id == job_id)).one()
        state = state_from_rows(model.tensors)
    val = [row.val_acc for row in rows]
    best = val.index(max(val)) + 1
    assert len(rows) < SPEC["train"]["epochs"] and len(rows) == best + 2   # stopped early
    assert model.metrics["epoch"] == best and model.metrics["epochs"] == len(rows)
    assert model.metrics["val_acc"] == rows[best - 1].val_acc != rows[-1].val_acc
    assert model.metrics["test_acc"] == rows[best - 1].test_acc

    net = nncore.Network(model.layers, model.input_shape, model.num_classes, dtype=model.dtype)
    net.load_state_dict(state)
    data = nncore.load_dataset("synthetic", samples=300, val_fraction=0.25)
    # The stored tensors are the best epoch's: they score its val_acc, not the last one's.
    assert net.accuracy(data.x_val, data.t_val) == model.metrics["val_acc"]
