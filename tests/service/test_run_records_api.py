"""The run-record JSON the dashboard reads (SQLite and PostgreSQL, real Redis): a job's losses,
activation statistics and attempts, and /workers with a real worker holding a job."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

import nncore
from nnq.processes import free_port, stop_process_group
from service import create_app
from service.db import jobs as store
from service.db.attempts import owner_parts
from tests import support
from tests.conftest import DEFAULT_TEST_LEASE_S
from tests.integration.test_worker import LONG_SPEC
from tests.support import wait_until

OWNER = "host-a:4242:abcd1234"
LEASE_S = 60
EPOCHS = 2
SPEC = {"name": "records", "data": {"dataset": "synthetic", "samples": 300},
        "model": {"preset": "mlp", "hidden": [16, 8], "activation": "tanh"},
        "train": {"epochs": EPOCHS, "batch_size": 50}}
UNKNOWN_JOB = 999999
HANG_GUARD_S = 60.0
EXTRA_JOBS = 2


class PreforkWorker(support.WorkerProcess):
    """A worker as deployments run it (the default prefork pool): its main process answers
    remote control while a pool child trains. (The tests' solo workers answer only between
    tasks.)"""

    def __init__(self, env: dict[str, str], log_path):
        self.name = f"nnq-test-{uuid.uuid4().hex[:8]}"
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q", "cpu",
             "--pool", "prefork", "--concurrency", "1", "-n", f"{self.name}@%h",
             "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
            cwd=support.ROOT, env={**os.environ, **env}, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        stop_process_group(self.proc, support.STOP_GRACE_S)
        self._log.close()


@pytest.fixture
def prefork_worker(database_url, redis_url, tmp_path):
    proc = PreforkWorker({"NNQ_DATABASE_URL": database_url, "NNQ_BROKER_URL": redis_url,
                          "NNQ_LEASE_SECONDS": str(DEFAULT_TEST_LEASE_S)},
                         tmp_path / "prefork-worker.log")
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def recorded(sessions):
    """A job trained by nncore here and recorded through the store as a worker records it;
    returns (job id, the epoch records)."""
    run = nncore.TrainingRun.from_spec(SPEC)
    with sessions() as session:
        job = store.create_job(session, SPEC, "cpu")[0]
        store.claim_job(session, job.id, OWNER, LEASE_S)
        kept = []

        def on_epoch(row, record):
            kept.append(record)
            store.record_epoch(session, job.id, OWNER, row, b"ck", record=record,
                               iteration=run.iteration, total_iterations=run.total_iterations)

        run.fit(on_epoch=on_epoch)
        store.finish_job(session, job.id, OWNER, run.network, run.metrics[-1],
                         run.dataset.fingerprint)
        return job.id, kept


def test_losses_list_every_kept_iteration_with_its_epoch(client, recorded):
    job_id, kept = recorded
    body = client.get(f"/api/v1/jobs/{job_id}/losses").get_json()
    assert body["job_id"] == job_id and body["every"] == 1
    assert body["items"] == [{"iteration": i, "epoch": r.epoch, "loss": loss}
                             for r in kept for i, loss in r.losses]


def test_activations_give_each_epochs_layers_with_histograms(client, recorded):
    job_id, kept = recorded
    body = client.get(f"/api/v1/jobs/{job_id}/activations").get_json()
    assert body["job_id"] == job_id and body["probe_size"] == kept[0].probe_size
    assert body["items"] == [{"epoch": r.epoch, **stat} for r in kept for stat in r.activations]
    tanh = [item for item in body["items"] if item["type"] == "tanh"]
    assert len(tanh) == 2 * EPOCHS and tanh[0]["name"] == "1 tanh"
    assert (tanh[0]["edges"][0], tanh[0]["edges"][-1]) == (-1.0, 1.0)
    assert all(len(i["edges"]) == len(i["counts"]) + 1 for i in body["items"])


def test_attempts_show_the_timeline_in_utc(client, recorded):
    job_id, _ = recorded
    body = client.get(f"/api/v1/jobs/{job_id}/attempts").get_json()
    assert body["job_id"] == job_id
    [attempt] = body["items"]
    assert {k: attempt[k] for k in ("attempt", "worker", "host", "resumed_from_epoch",
                                    "outcome")} == {"attempt": 1, "worker": OWNER,
                                                    "host": "host-a", "resumed_from_epoch": 0,
                                                    "outcome": "succeeded"}
    assert attempt["started_at"].endswith("Z") and attempt["ended_at"].endswith("Z")


def test_a_job_without_records_answers_empty_lists(client):
    job_id = client.post("/api/v1/jobs", json=SPEC).get_json()["id"]
    assert client.get(f"/api/v1/jobs/{job_id}/losses").get_json() == {
        "job_id": job_id, "every": 1, "items": []}
    assert client.get(f"/api/v1/jobs/{job_id}/activations").get_json() == {
        "job_id": job_id, "probe_size": 0, "items": []}
    assert client.get(f"/api/v1/jobs/{job_id}/attempts").get_json() == {
        "job_id": job_id, "items": []}


@pytest.mark.parametrize("record", ["losses", "activations", "attempts"])
def test_unknown_job_is_a_404_naming_job_id(client, record):
    response = client.get(f"/api/v1/jobs/{UNKNOWN_JOB}/{record}")
    assert response.status_code == 404
    error = response.get_json()["error"]
    assert error["code"] == "not_found" and error["message"].startswith("job_id")


def test_the_new_endpoints_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in ("/api/v1/jobs/{job_id}/losses", "/api/v1/jobs/{job_id}/activations",
                 "/api/v1/jobs/{job_id}/attempts", "/api/v1/workers"):
        assert "200" in paths[path]["get"]["responses"], path


def test_workers_show_the_held_job_queue_depths_and_who_waits_longest(
        client, sessions, prefork_worker):
    w = prefork_worker
    held = client.post("/api/v1/jobs", json=LONG_SPEC).get_json()["id"]
    wait_until("the job to run", lambda: client.get(f"/api/v1/jobs/{held}").get_json()
               ["status"] == "running", [w], timeout=HANG_GUARD_S)
    waiting = [client.post("/api/v1/jobs", json={**LONG_SPEC, "name": f"w{i}"}).get_json()["id"]
               for i in range(EXTRA_JOBS)]
    body = client.get("/api/v1/workers").get_json()
    with sessions() as session:
        owner = store.get_job(session, held).lease_owner
    for job_id in (held, *waiting):
        client.post(f"/api/v1/jobs/{job_id}/cancel")
    [live] = body["workers"]
    assert live["name"] == f"{w.name}@{live['host']}" and live["pid"] == w.proc.pid
    assert owner_parts(owner)[1] != w.proc.pid               # a pool child holds the lease
    assert live["queues"] == ["cpu"] and live["job_id"] == held
    assert live["lease_expires_at"].endswith("Z")
    assert body["queues"] == [{"name": "cpu", "depth": EXTRA_JOBS}, {"name": "gpu", "depth": 0}]
    assert [j["id"] for j in body["waiting"]] == waiting
    assert body["waiting"][0]["status"] == "queued" and body["waiting"][0]["progress"]


def test_workers_with_the_broker_down_answer_no_workers_and_empty_queues(database_url):
    app = create_app({"NNQ_DATABASE_URL": database_url, "TESTING": True,
                      "NNQ_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"})
    client = app.test_client()
    queued = client.post("/api/v1/jobs", json=SPEC).get_json()["id"]
    response = client.get("/api/v1/workers")
    assert response.status_code == 200
    assert response.get_json()["workers"] == []
    assert response.get_json()["queues"] == [{"name": "cpu", "depth": 0},
                                             {"name": "gpu", "depth": 0}]
    assert [j["id"] for j in response.get_json()["waiting"]] == [queued]
