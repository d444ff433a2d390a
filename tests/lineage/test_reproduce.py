"""POST /models/{ref}/reproduce: the recorded spec and seeds trained again, every tensor
compared by sha256, the verdict stored on both models; refused (409) when the recorded data
files are gone or changed, with nothing stored."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from service.db.models import Job, Reproduction
from tests.lineage.conftest import MLP_SPEC, lineage
from tests.nncore.test_data import idx_bytes, write_idx_set

LABELS_FILE = "train-labels-idx1-ubyte"  # written raw (gz=False) so the tests can rewrite it


def _reproduce(client, model_id) -> dict:
    response = client.post(f"/api/v1/models/{model_id}/reproduce")
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["reproduction"]["verdict"] == "pending" and body["job"]["status"] == "queued"
    return body


def _counts(sessions) -> tuple[int, int]:
    with sessions() as session:
        return (session.scalar(select(func.count()).select_from(Job)),
                session.scalar(select(func.count()).select_from(Reproduction)))


@pytest.fixture
def idx_dir(tmp_path, monkeypatch, app):
    """A tiny MNIST in raw IDX files that the API and the in-process worker both read."""
    data_dir = tmp_path / "idx"
    write_idx_set(data_dir / "mnist", n_train=60, n_test=20, gz=False)
    monkeypatch.setenv("NNQ_DATA_DIR", str(data_dir))
    app.config["NNQ_DATA_DIR"] = str(data_dir)
    return data_dir / "mnist"


def _relabel(directory) -> None:
    """Rewrite the training labels (shifted by one class), keeping the file's name."""
    import numpy as np

    from nncore import read_idx

    labels = read_idx(directory / LABELS_FILE)
    (directory / LABELS_FILE).write_bytes(idx_bytes((labels.astype(np.int64) + 1) % 10))


def test_a_reproduction_is_identical_and_the_verdict_is_on_both_models(client, train):
    original = train(MLP_SPEC)
    started = _reproduce(client, original["model_id"])
    assert started["job"]["spec"] == original["spec"]
    assert started["job"]["name"] == "lineage-mlp-reproduction"
    again = train.run(started["job"]["id"])

    for model_id in (original["model_id"], again["model_id"]):
        record = lineage(client, model_id)
        assert record["verdict"] == "identical", record["reproductions"]
        [reproduction] = record["reproductions"]
        assert reproduction["original_model_id"] == original["model_id"]
        assert reproduction["model_id"] == again["model_id"]
        assert reproduction["tensors"] == [] and reproduction["finished_at"]
    # both ran in this process: no recorded condition differs
    assert lineage(client, original["model_id"])["reproductions"][0]["conditions"] == []
    page = " ".join(client.get(f"/models/{original['model_id']}").get_data(as_text=True)
                    .split())
    assert '<td class="verdict">identical</td>' in page
    assert "input <code>input</code> (batch, 784) float32" in page


def test_another_blas_thread_count_is_named_among_the_conditions(client, train):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        original = train(MLP_SPEC)
    started = _reproduce(client, original["model_id"])
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        train.run(started["job"]["id"])
    [reproduction] = lineage(client, original["model_id"])["reproductions"]
    threads = [c for c in reproduction["conditions"] if c["condition"] == "blas.threads"]
    assert threads == [{"condition": "blas.threads", "original": 1, "reproduced": 2}]
    assert reproduction["verdict"] in ("identical", "differs")


def test_a_data_file_changed_after_the_request_gives_differs_with_the_reason(
        client, train, idx_dir):
    original = train({**MLP_SPEC, "data": {"dataset": "mnist", "val_fraction": 0.2}})
    recorded = {f["name"]: f["sha256"] for f in lineage(client, original["model_id"])["data"]
                ["files"]}
    started = _reproduce(client, original["model_id"])
    _relabel(idx_dir)  # after the API's check, before a worker trains the job
    train.run(started["job"]["id"])

    record = lineage(client, original["model_id"])
    assert record["verdict"] == "differs"
    [reproduction] = record["reproductions"]
    assert reproduction["tensors"], "relabelled data must change the trained weights"
    assert all(t["max_abs_diff"] > 0 and t["original_sha256"] != t["reproduced_sha256"]
               for t in reproduction["tensors"] if t["name"].endswith(".W"))
    conditions = {c["condition"]: c for c in reproduction["conditions"]}
    changed = conditions[f"data.files.{LABELS_FILE}"]
    assert changed["original"] == recorded[LABELS_FILE] != changed["reproduced"]
    assert "data.arrays.t_train" in conditions and "data.arrays.x_train" not in conditions


@pytest.mark.parametrize("how", ["changed", "gone"])
def test_data_files_gone_or_changed_are_a_409_naming_the_file_and_both_hashes(
        client, train, sessions, idx_dir, how):
    original = train({**MLP_SPEC, "data": {"dataset": "mnist", "val_fraction": 0.2}})
    recorded = {f["name"]: f["sha256"] for f in lineage(client, original["model_id"])["data"]
                ["files"]}
    if how == "changed":
        _relabel(idx_dir)
    else:
        (idx_dir / LABELS_FILE).unlink()
    before = _counts(sessions)

    response = client.post(f"/api/v1/models/{original['model_id']}/reproduce")
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert LABELS_FILE in error["message"] and recorded[LABELS_FILE] in error["message"]
    [detail] = error["details"]
    assert detail["file"] == LABELS_FILE and detail["recorded_sha256"] == recorded[LABELS_FILE]
    if how == "gone":
        assert detail["current_sha256"] is None and "is gone" in error["message"]
    else:
        assert detail["current_sha256"] not in (None, recorded[LABELS_FILE])
        assert detail["current_sha256"] in error["message"]
    assert _counts(sessions) == before


def test_a_reproduction_whose_job_fails_reads_failed_with_the_reason(client, train, idx_dir):
    original = train({**MLP_SPEC, "data": {"dataset": "mnist", "val_fraction": 0.2}})
    started = _reproduce(client, original["model_id"])
    (idx_dir / LABELS_FILE).unlink()

    from workers.train import run_job

    assert run_job(started["job"]["id"]) == "failed"
    [reproduction] = lineage(client, original["model_id"])["reproductions"]
    assert reproduction["verdict"] == "failed" and reproduction["model_id"] is None
    assert "data error" in reproduction["error"]


def test_a_model_whose_recorded_spec_no_longer_parses_is_a_409(client, sessions):
    """A model stored without lineage, by a job whose spec today's schema refuses."""
    import nncore
    from service.db.jobs import claim_job, create_job, finish_job

    net = nncore.build({"preset": "mlp", "hidden": [4]}, (784,), 10)
    with sessions() as session:
        job, _ = create_job(session, {"name": "odd", "model": {"preset": "mlp"}}, name="odd")
        claim_job(session, job.id, "owner", 60)
        model_id = finish_job(session, job.id, "owner", net, {}, None).id
    before = _counts(sessions)
    response = client.post(f"/api/v1/models/{model_id}/reproduce")
    assert response.status_code == 409
    assert "not a valid job spec" in response.get_json()["error"]["message"]
    assert _counts(sessions) == before
