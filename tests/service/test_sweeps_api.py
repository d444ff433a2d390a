"""Sweeps over HTTP (SQLite and PostgreSQL, real Redis): submit, ranked read, cancel, plot,
promote; bad requests are 4xx naming the field, in the API's one error shape."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from service import create_app
from tests.sweeps.trials import run_trial

BASE = {"data": {"dataset": "synthetic", "samples": 200},
        "model": {"preset": "mlp", "hidden": [16]}, "train": {"epochs": 3}}
SWEEP = {"name": "lr-wd", "base": BASE, "seed": 5, "max_trials": 6, "parallelism": 2,
         "space": {"train.optimizer.lr": {"loguniform": [1e-4, 1e-1]},
                   "train.weight_decay": {"loguniform": [1e-8, 1e-4]},
                   "model.hidden": {"choice": [[16], [32, 16]]}}}
TRIAL_KEYS = {"index", "job_id", "params", "status", "val_acc", "train_acc", "test_acc",
              "epochs", "model_id", "error", "chosen"}


def submit(client, body=SWEEP, **kwargs):
    r = client.post("/api/v1/sweeps", json=body, **kwargs)
    assert r.status_code == 202, r.get_data(as_text=True)
    return r.get_json()


def test_submit_stores_every_trial_and_reads_them_back(client):
    sweep = submit(client)
    assert sweep["status"] == "running" and sweep["strategy"] == "random"
    assert sweep["metric"] == "val_acc" and sweep["best"] is None
    c = sweep["counts"]
    assert (c["queued"], c["pending"], c["total"]) == (2, 4, 6)  # parallelism 2 started
    queued = [t for t in sweep["trials"] if t["status"] == "queued"]
    job = client.get(f"/api/v1/jobs/{queued[0]['job_id']}").get_json()
    assert job["sweep_id"] == sweep["id"] and job["name"] == f"lr-wd-t{queued[0]['index']}"
    assert sorted(t["index"] for t in sweep["trials"]) == list(range(6))
    assert all(set(t) == TRIAL_KEYS for t in sweep["trials"])
    assert all(set(t["params"]) == set(SWEEP["space"]) for t in sweep["trials"])
    assert sweep["request"]["base"]["train"]["batch_size"] == 100
    again = client.get(f"/api/v1/sweeps/{sweep['id']}").get_json()
    assert sorted(t["params"]["train.optimizer.lr"] for t in again["trials"]) == sorted(
        t["params"]["train.optimizer.lr"] for t in sweep["trials"])
    listed = client.get("/api/v1/sweeps").get_json()
    assert listed["total"] == 1 and listed["items"][0]["counts"]["total"] == 6
    assert client.get("/api/v1/sweeps?status=succeeded").get_json()["total"] == 0


def test_same_seed_same_params_across_sweeps(client):
    first, second = submit(client), submit(client)
    by_index = [{t["index"]: t["params"] for t in s["trials"]} for s in (first, second)]
    assert by_index[0] == by_index[1] and first["id"] != second["id"]


def test_trials_rank_by_last_val_acc_and_best_is_the_top_succeeded(client, sessions):
    sweep = submit(client)
    run_trial(sessions, sweep["id"], 0, [0.9, 0.6])          # last epoch counts: 0.6
    run_trial(sessions, sweep["id"], 1, [0.5, 0.8])
    run_trial(sessions, sweep["id"], 2, [0.95], outcome="running")
    run_trial(sessions, sweep["id"], 3, [0.7, 0.99], outcome="failed")
    got = client.get(f"/api/v1/sweeps/{sweep['id']}").get_json()
    assert [t["index"] for t in got["trials"][:4]] == [3, 2, 1, 0]
    assert [t["val_acc"] for t in got["trials"][:4]] == [0.99, 0.95, 0.8, 0.6]
    assert all(t["val_acc"] is None for t in got["trials"][4:])
    assert got["best"]["index"] == 1 and got["best"]["model_id"] is not None
    assert got["best"]["epochs"] == 2 and got["best"]["test_acc"] == pytest.approx(0.79)
    assert got["trials"][0]["status"] == "failed" and got["trials"][0]["error"] == "diverged"
    c = got["counts"]
    assert (c["succeeded"], c["running"], c["failed"], c["total"]) == (2, 1, 1, 6)


def test_plot_is_a_png_with_and_without_data(client, sessions):
    sweep = submit(client)
    empty = client.get(f"/api/v1/sweeps/{sweep['id']}/plot.png")
    assert empty.status_code == 200 and empty.data.startswith(b"\x89PNG")
    for index, curve in enumerate(([0.3, 0.5], [0.4, 0.7, 0.8], [0.2], [0.6, 0.65])):
        run_trial(sessions, sweep["id"], index, curve)
    r = client.get(f"/api/v1/sweeps/{sweep['id']}/plot.png")
    assert r.status_code == 200 and r.mimetype == "image/png"
    assert r.data.startswith(b"\x89PNG\r\n\x1a\n") and len(r.data) > len(empty.data)


def test_promote_points_the_alias_at_the_best_model(client, sessions):
    sweep = submit(client)
    r = client.post(f"/api/v1/sweeps/{sweep['id']}/promote", json={"alias": "best-lr"})
    assert r.status_code == 409 and "no succeeded trial" in r.get_json()["error"]["message"]
    run_trial(sessions, sweep["id"], 0, [0.6])
    run_trial(sessions, sweep["id"], 1, [0.9])
    run_trial(sessions, sweep["id"], 2, [0.99], outcome="running")
    r = client.post(f"/api/v1/sweeps/{sweep['id']}/promote", json={"alias": "best-lr"})
    assert r.status_code == 200, r.get_data(as_text=True)
    promoted = r.get_json()
    best = client.get(f"/api/v1/sweeps/{sweep['id']}").get_json()["best"]
    assert promoted["trial"]["index"] == 1 and promoted["model_id"] == best["model_id"]
    model = client.get("/api/v1/models/best-lr").get_json()
    assert model["id"] == best["model_id"] and model["job_id"] == best["job_id"]
    bad = client.post(f"/api/v1/sweeps/{sweep['id']}/promote", json={"alias": "9x"})
    assert bad.status_code == 422 and bad.get_json()["error"]["details"][0]["field"] == "alias"


def test_cancel_stops_the_sweep_and_its_trials(client, sessions):
    sweep = submit(client)
    run_trial(sessions, sweep["id"], 0, [0.5], outcome="running")
    r = client.post(f"/api/v1/sweeps/{sweep['id']}/cancel")
    assert r.status_code == 200
    got = r.get_json()
    assert got["status"] == "cancelled" and got["finished_at"] is not None
    statuses = {t["index"]: t["status"] for t in got["trials"]}
    assert statuses == {0: "running", 1: "cancelled", 2: "cancelled", 3: "cancelled",
                        4: "cancelled", 5: "cancelled"}
    jobs = {t["index"]: t["job_id"] for t in got["trials"]}
    assert jobs[1] is not None and jobs[2] is None  # trial 1's queued job ended, 2 never ran
    assert client.get(f"/api/v1/jobs/{jobs[1]}").get_json()["status"] == "cancelled"
    assert client.get(f"/api/v1/jobs/{jobs[0]}").get_json()["cancel_requested"]
    assert got["counts"]["pending"] == 0 and got["counts"]["queued"] == 0
    again = client.post(f"/api/v1/sweeps/{sweep['id']}/cancel")
    assert again.status_code == 409


@pytest.mark.parametrize("change,field,words", [
    ({"space": {"train.learning_rate": {"loguniform": [1e-4, 1e-1]}}},
     "space.train.learning_rate", "unknown spec field"),
    ({"space": {"train.weight_decay": {"uniform": [0.1, 0.1]}}},
     "space.train.weight_decay.uniform", "empty range"),
    ({"space": {"train.optimizer.lr": {"loguniform": [-1e-3, 1e-1]}}},
     "space.train.optimizer.lr.loguniform", "positive"),
    ({"space": {"model.hidden": {"choice": []}}}, "space.model.hidden.choice", "non-empty"),
    ({"max_trials": 201}, "max_trials", "200"),
    ({"metric": "test_acc"}, "metric", "leaks the test set"),
    ({"strategy": "grid"}, "space.train.optimizer.lr.loguniform", "continuous"),
    ({"space": {"train.batch_size": {"choice": [0, 50]}}}, "space.train.batch_size",
     "invalid spec: train.batch_size"),
    ({"base": {**BASE, "train": {"epochs": 0}}}, "base.train.epochs", "greater"),
    ({"parallelism": 0}, "parallelism", "greater"),
    ({"surprise": 1}, "surprise", "Extra"),
    ({"name": ""}, "name", "at least 1"),
])
def test_bad_sweeps_are_422_naming_the_field(client, change, field, words):
    r = client.post("/api/v1/sweeps", json={**SWEEP, **change})
    assert r.status_code == 422, r.get_data(as_text=True)
    error = r.get_json()["error"]
    assert error["code"] == "validation_error"
    named = {d["field"]: d["message"] for d in error["details"]}
    assert field in named and words in named[field], named
    assert client.get("/api/v1/sweeps").get_json()["total"] == 0


def test_unknown_sweep_is_404_and_garbage_never_5xx(client):
    for method, path in (("GET", "/api/v1/sweeps/77"), ("GET", "/api/v1/sweeps/77/plot.png"),
                         ("POST", "/api/v1/sweeps/77/cancel")):
        r = client.open(path, method=method)
        assert r.status_code == 404 and "sweep_id" in r.get_json()["error"]["message"]
    r = client.post("/api/v1/sweeps/77/promote", json={"alias": "a"})
    assert r.status_code == 404
    for body in (b"null", b"[1]", b'{"space": 1, "base": []}', b"{", b"\xff"):
        for path in ("/api/v1/sweeps", "/api/v1/sweeps/1/promote"):
            r = client.post(path, data=body, content_type="application/json")
            assert 400 <= r.status_code < 500 and set(r.get_json()["error"]) == {
                "code", "message", "details"}
    assert client.get("/api/v1/sweeps?limit=x").status_code == 422


def test_idempotency_key_returns_the_same_sweep(client):
    headers = {"Idempotency-Key": "nightly-1"}
    first = submit(client, headers=headers)
    r = client.post("/api/v1/sweeps", json=SWEEP, headers=headers)
    assert r.status_code == 200 and r.get_json()["id"] == first["id"]
    r = client.post("/api/v1/sweeps", json={**SWEEP, "seed": 6}, headers=headers)
    assert r.status_code == 409


def test_mutating_sweep_routes_need_the_token_and_routes_are_documented(database_url, redis_url):
    app = create_app({"NNQ_DATABASE_URL": database_url, "NNQ_BROKER_URL": redis_url,
                      "NNQ_API_TOKEN": "s3cret"})
    guarded = app.test_client()
    for path, body in (("/api/v1/sweeps", SWEEP), ("/api/v1/sweeps/1/cancel", None),
                       ("/api/v1/sweeps/1/promote", {"alias": "a"})):
        assert guarded.post(path, json=body).status_code == 401
    submit(guarded, headers={"Authorization": "Bearer s3cret"})
    assert guarded.get("/api/v1/sweeps").status_code == 200
    doc = guarded.get("/api/v1/openapi.json").get_json()
    validate(doc)
    assert {"get", "post"} <= set(doc["paths"]["/api/v1/sweeps"])
    for path in ("/api/v1/sweeps/{sweep_id}", "/api/v1/sweeps/{sweep_id}/plot.png"):
        assert "get" in doc["paths"][path]
    for path in ("/api/v1/sweeps/{sweep_id}/cancel", "/api/v1/sweeps/{sweep_id}/promote"):
        assert "post" in doc["paths"][path]
    body = doc["paths"]["/api/v1/sweeps"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"].endswith("/SweepRequest")
    assert doc["components"]["schemas"]["SweepRequest"]["additionalProperties"] is False
