"""Jobs over HTTP: submit (enqueued on a real Redis), idempotency, list, read, metrics,
curves and cancel."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import redis
from PIL import Image

from nnq.processes import free_port
from service import create_app
from service.db.jobs import claim_job, record_epoch

SPEC = {"name": "tiny", "data": {"dataset": "synthetic", "samples": 200},
        "model": {"preset": "mlp", "hidden": [20], "batchnorm": True},
        "train": {"epochs": 2, "batch_size": 50, "optimizer": {"type": "sgd", "lr": 0.1}}}


def queued_messages(redis_url: str, queue: str = "cpu") -> list[dict]:
    """The Celery messages waiting in ``queue`` (Redis transport: a list of JSON envelopes)."""
    out = []
    for raw in redis.Redis.from_url(redis_url).lrange(queue, 0, -1):
        envelope = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        out.append({"task": envelope["headers"]["task"], "args": args})
    return out


def test_submit_returns_202_and_enqueues_the_job_id(client, redis_url):
    r = client.post("/api/v1/jobs", json=SPEC)
    assert r.status_code == 202
    job = r.get_json()
    assert job["status"] == "queued" and job["name"] == "tiny"
    assert job["progress"] == {"epoch": 0, "iteration": 0, "total_iterations": 0}
    assert job["spec"]["train"]["optimizer"] == {"type": "sgd", "lr": 0.1}
    assert job["spec"]["model"]["activation"] == "relu"  # defaults filled in
    assert queued_messages(redis_url) == [{"task": "nnq.train_job", "args": [job["id"]]}]


def test_gpu_jobs_go_to_the_gpu_queue(client, redis_url):
    job = client.post("/api/v1/jobs", json={**SPEC, "device": "gpu"}).get_json()
    assert queued_messages(redis_url, "gpu") == [{"task": "nnq.train_job", "args": [job["id"]]}]
    assert queued_messages(redis_url, "cpu") == []


def test_same_idempotency_key_gives_the_same_job(client, redis_url):
    headers = {"Idempotency-Key": "nightly-42"}
    first = client.post("/api/v1/jobs", json=SPEC, headers=headers)
    second = client.post("/api/v1/jobs", json=SPEC, headers=headers)
    assert first.status_code == 202 and second.status_code == 200
    assert first.get_json()["id"] == second.get_json()["id"]
    assert client.get("/api/v1/jobs").get_json()["total"] == 1
    assert len(queued_messages(redis_url)) == 1


def test_idempotency_key_reused_for_another_spec_is_a_conflict(client):
    headers = {"Idempotency-Key": "k1"}
    assert client.post("/api/v1/jobs", json=SPEC, headers=headers).status_code == 202
    other = {**SPEC, "name": "other"}
    r = client.post("/api/v1/jobs", json=other, headers=headers)
    assert r.status_code == 409
    assert "Idempotency-Key" in r.get_json()["error"]["message"]


def test_broker_down_still_accepts_the_job_as_queued(database_url, redis_url):
    app = create_app({"NNQ_DATABASE_URL": database_url,
                      "NNQ_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"})
    r = app.test_client().post("/api/v1/jobs", json=SPEC)
    assert r.status_code == 202
    assert app.test_client().get(f"/api/v1/jobs/{r.get_json()['id']}").get_json()["status"] == "queued"


def test_list_filters_pages_and_shows_newest_first(client):
    ids = [client.post("/api/v1/jobs", json={**SPEC, "name": name}).get_json()["id"]
           for name in ("a", "b", "a")]
    page = client.get("/api/v1/jobs?limit=2").get_json()
    assert page["total"] == 3 and [j["id"] for j in page["items"]] == ids[::-1][:2]
    assert [j["id"] for j in client.get("/api/v1/jobs?limit=2&offset=2").get_json()["items"]] == ids[:1]
    named = client.get("/api/v1/jobs?name=a").get_json()
    assert [j["id"] for j in named["items"]] == [ids[2], ids[0]]
    client.post(f"/api/v1/jobs/{ids[1]}/cancel")
    cancelled = client.get("/api/v1/jobs?status=cancelled").get_json()
    assert [j["id"] for j in cancelled["items"]] == [ids[1]]


def test_list_filters_by_sweep(client):
    sweep = {"name": "s", "base": SPEC, "space": {"train.seed": {"grid": [1, 2]}},
             "strategy": "grid", "parallelism": 2}
    client.post("/api/v1/jobs", json=SPEC)
    made = client.post("/api/v1/sweeps", json=sweep).get_json()
    trial_jobs = sorted((t["job_id"] for t in made["trials"]), reverse=True)
    listed = client.get(f"/api/v1/jobs?sweep_id={made['id']}").get_json()
    assert listed["total"] == 2 and [j["id"] for j in listed["items"]] == trial_jobs
    assert client.get("/api/v1/jobs?sweep_id=0").status_code == 422


def test_cancel_queued_job_ends_it_at_once_and_twice_is_a_conflict(client):
    job_id = client.post("/api/v1/jobs", json=SPEC).get_json()["id"]
    r = client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert r.status_code == 200 and r.get_json()["status"] == "cancelled"
    assert r.get_json()["finished_at"] is not None
    again = client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "conflict"


def test_cancel_running_job_flags_it_for_its_worker(client, sessions):
    job_id = client.post("/api/v1/jobs", json=SPEC).get_json()["id"]
    with sessions() as session:
        assert claim_job(session, job_id, "w1", 60) is not None
    r = client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert r.status_code == 202
    assert r.get_json()["status"] == "running" and r.get_json()["cancel_requested"] is True


def test_metrics_and_curves_show_recorded_epochs(client, sessions):
    job_id = client.post("/api/v1/jobs", json=SPEC).get_json()["id"]
    with sessions() as session:
        claim_job(session, job_id, "w1", 60)
        for epoch in (1, 2):
            row = {"epoch": epoch, "train_loss": 2.0 / epoch, "train_acc": 0.3 * epoch,
                   "val_acc": 0.25 * epoch, "test_acc": 0.2 * epoch, "seconds": 0.5}
            record_epoch(session, job_id, "w1", row, b"checkpoint", iteration=4 * epoch,
                         total_iterations=8)
    rows = client.get(f"/api/v1/jobs/{job_id}/metrics").get_json()
    assert rows["job_id"] == job_id
    assert [(m["epoch"], m["test_acc"]) for m in rows["items"]] == [(1, 0.2), (2, 0.4)]
    assert set(rows["items"][0]) == {"epoch", "train_loss", "train_acc", "val_acc", "test_acc",
                                     "seconds"}
    job = client.get(f"/api/v1/jobs/{job_id}").get_json()
    assert job["progress"] == {"epoch": 2, "iteration": 8, "total_iterations": 8}
    png = client.get(f"/api/v1/jobs/{job_id}/curves.png")
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert png.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert Image.open(io.BytesIO(png.data)).size == (640, 480)
    assert np.asarray(Image.open(io.BytesIO(png.data))).std() > 0


def test_unknown_job_is_404_in_the_error_shape(client):
    for path in ("/api/v1/jobs/999", "/api/v1/jobs/999/metrics", "/api/v1/jobs/999/curves.png"):
        r = client.get(path)
        assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"
    assert client.post("/api/v1/jobs/999/cancel").status_code == 404
