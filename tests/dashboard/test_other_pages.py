"""Models, sweeps and workers pages, and the static files: the tensor table with BatchNorm
running statistics, the predict pad, ranked trials, and the vendored chart library."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import service.dashboard
from tests.dashboard.conftest import add_job
from tests.sweeps.trials import run_trial

VENDOR = Path(service.dashboard.__file__).parent / "static" / "vendor" / "echarts"
SWEEP = {"name": "lr-wd", "seed": 5, "max_trials": 4, "parallelism": 2,
         "base": {"data": {"dataset": "synthetic", "samples": 200},
                  "model": {"preset": "mlp", "hidden": [16]}, "train": {"epochs": 3}},
         "space": {"train.optimizer.lr": {"loguniform": [1e-4, 1e-1]},
                   "train.weight_decay": {"loguniform": [1e-8, 1e-4]}}}
PAGES = ("/", "/compare", "/models", "/sweeps", "/workers")


def test_models_page_lists_models_with_aliases(client, trained, page):
    model_id, _ = trained
    assert client.put("/api/v1/models/aliases/production", json={"model_id": model_id}).status_code == 200
    status, text = page("/models")
    assert status == 200 and 'id="models-table"' in text
    assert f'<tr data-model-id="{model_id}">' in text
    assert '<span class="alias">production</span>' in text and "50.0 %" in text


def test_model_page_shows_tensors_with_running_statistics_and_the_predict_pad(trained, page):
    model_id, net = trained
    status, text = page(f"/models/{model_id}")
    assert status == 200
    names = re.findall(r'<tr data-tensor-name="([^"]+)">', text)
    assert set(names) == set(net.state_dict())
    assert "1.running_mean" in names and "1.running_var" in names
    mean = net.state_dict()["1.running_mean"]
    assert hashlib.sha256(mean.tobytes()).hexdigest() in text
    assert f"({mean.shape[0]})" in text and "buffer" in text
    for element in ("alias-form", "predict-button", "clear-canvas", "png-upload",
                    "probabilities-chart", "predicted-label"):
        assert f'id="{element}"' in text, element
    assert '<canvas id="draw-canvas" width="280" height="280">' in text
    assert '<input name="alias"' in text and 'type="file"' in text
    assert """data-classes='["0", "1", "2",""" in text  # its job names no dataset


def test_sweep_pages_rank_trials_and_link_the_top_ones(client, sessions, page):
    sweep = client.post("/api/v1/sweeps", json=SWEEP).get_json()
    best = run_trial(sessions, sweep["id"], 1, [0.6, 0.9])
    second = run_trial(sessions, sweep["id"], 0, [0.7, 0.8])
    status, text = page("/sweeps")
    assert status == 200 and 'id="sweeps-table"' in text
    assert f'<tr data-sweep-id="{sweep["id"]}">' in text and "2 / 4" in text
    status, text = page(f"/sweeps/{sweep['id']}")
    assert status == 200
    for element in ("sweep-status", "sweep-counts", "trials-table", "objective-charts",
                    "parallel-chart", "trial-curves", "best-trial", "promote-form", "compare-top"):
        assert f'id="{element}"' in text, element
    indexes = [int(i) for i in re.findall(r'<tr data-trial-index="(\d+)"', text)]
    assert indexes[:2] == [1, 0] and sorted(indexes) == [0, 1, 2, 3]
    assert f'href="/compare?jobs={best},{second}"' in text
    assert f"job {best}</a>" in text and "90.0 %" in text
    assert "<code>train.optimizer.lr</code>" in text
    _, text = page(f"/?sweep={sweep['id']}")
    listed = [int(i) for i in re.findall(r'<tr data-job-id="(\d+)"', text)]
    assert sorted(listed) == sorted([best, second])  # the trials that have jobs


def test_jobs_outside_the_sweep_are_filtered_out(client, sessions, page):
    sweep = client.post("/api/v1/sweeps", json=SWEEP).get_json()
    trial_job = run_trial(sessions, sweep["id"], 0, [0.5], outcome="running")
    stray = add_job(sessions, "stray")
    _, text = page(f"/?sweep={sweep['id']}&status=running")
    assert f'data-job-id="{trial_job}"' in text and f'data-job-id="{stray}"' not in text


def test_workers_page_has_its_tables(page):
    status, text = page("/workers")
    assert status == 200
    assert all(f'id="{t}"' in text for t in ("workers-table", "queues-table", "waiting-table"))


def test_every_page_is_served_without_the_internet(page):
    for path in PAGES:
        status, text = page(path)
        assert status == 200, path
        sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', text)
        local = [s for s in sources if s != "data:,"]  # the empty favicon: no request at all
        assert local and all(s.startswith("/static/") for s in local), (path, sources)


def test_the_chart_library_is_vendored_with_its_version_and_licence(client):
    response = client.get("/static/vendor/echarts/echarts.min.js")
    assert response.status_code == 200 and len(response.data) > 500_000
    response.close()
    version = (VENDOR / "VERSION").read_text().strip()
    assert version.startswith("6.")
    assert f"ECharts {version}" in (VENDOR / "README.md").read_text()
    assert "Apache License" in (VENDOR / "LICENSE").read_text()
    for name in ("nnq.js", "charts.js", "jobs.js", "dashboard.css"):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200, name
        response.close()


def test_the_api_still_answers_json_under_api_v1(client):
    response = client.get("/api/v1/jobs/999")
    assert response.status_code == 404 and response.is_json
