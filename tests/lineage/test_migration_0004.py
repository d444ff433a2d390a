"""Revision 0004 adds the lineage tables next to models stored before it: those stay
readable, show what their job still tells, and can be reproduced from their job's spec."""

from __future__ import annotations

import hashlib

import numpy as np
from alembic import command
from sqlalchemy import insert

from service.db import Job, Model, ModelTensor, make_engine, utcnow
from tests.lineage.conftest import MLP_SPEC, lineage
from tests.support import alembic_config, table_names

LINEAGE_TABLES = {"model_lineage", "reproductions"}


def _old_model(url: str) -> int:
    """A job and its model with one tensor, inserted as revision 0003 knew them."""
    now = utcnow()
    bias = np.zeros(10, np.float32).tobytes()
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            job_id = conn.execute(insert(Job.__table__).values(
                name="old", status="succeeded", spec=MLP_SPEC, device="cpu", attempts=1,
                max_attempts=3, epoch=2, iteration=20, total_iterations=20,
                cancel_requested=False, created_at=now, updated_at=now, started_at=now,
                finished_at=now)).inserted_primary_key[0]
            model_id = conn.execute(insert(Model.__table__).values(
                job_id=job_id, name="old", input_shape=[784], num_classes=10,
                dtype="float32", layers=[{"type": "affine", "units": 10, "init": "he",
                                          "init_std": 0.01}],
                metrics={"test_acc": 0.5}, data_fingerprint="f" * 64,
                created_at=now)).inserted_primary_key[0]
            conn.execute(insert(ModelTensor.__table__).values(
                model_id=model_id, name="0.b", role="param", dtype="float32", shape=[10],
                nbytes=len(bias), sha256=hashlib.sha256(bias).hexdigest(), data=bias))
            conn.execute(Job.__table__.update().where(Job.__table__.c.id == job_id)
                         .values(model_id=model_id))
    finally:
        engine.dispose()
    return model_id


def test_models_from_before_0004_stay_valid_and_can_be_reproduced(database_url, client):
    cfg = alembic_config(database_url)
    command.downgrade(cfg, "0003")
    assert not LINEAGE_TABLES & table_names(database_url)
    model_id = _old_model(database_url)
    command.upgrade(cfg, "head")

    assert client.get(f"/api/v1/models/{model_id}").status_code == 200
    record = lineage(client, model_id)
    assert record["source"] == "unrecorded" and record["recorded"] is False
    assert record["spec"]["model"] == MLP_SPEC["model"]
    assert record["seeds"]["train.seed"] == MLP_SPEC["train"]["seed"]
    assert record["data"]["fingerprint"] == "f" * 64 and record["environment"] is None
    assert record["run"]["job_id"] is not None and record["run"]["attempts"] == []

    started = client.post(f"/api/v1/models/{model_id}/reproduce")
    assert started.status_code == 202, started.get_json()
    assert started.get_json()["job"]["spec"] == record["spec"]

    command.downgrade(cfg, "0003")
    assert not LINEAGE_TABLES & table_names(database_url)
    command.upgrade(cfg, "head")
    assert client.get(f"/api/v1/models/{model_id}").status_code == 200
