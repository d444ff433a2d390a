"""Generated hostile input: Schemathesis over the served OpenAPI document, against gunicorn on
a real database (SQLite and PostgreSQL) and a real Redis, with the bearer token set.

Every phase runs over every operation: the document's examples, boundary values, fuzzing with
valid and invalid data, and stateful sequences that follow the document's links (submit a job,
then read its metrics; list models, then predict). The run must generate at least
``MIN_CASES`` cases and answer none of them with a 5xx or with anything the document does not
describe (status, content type, headers, body schema, ``Allow`` on 405). The settings are in
``schemathesis.toml``; the worst cases found are kept in test_hostile_regressions.py.

``NNQ_SCHEMATHESIS_SEED`` picks another seed for an exploratory run (the default is fixed, so
the suite sees the same cases each time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import nncore
from tests.service.conftest import MODEL_SPEC, store_model
from tests.service.served import served_api

CONFIG = Path(__file__).with_name("schemathesis.toml")
MIN_CASES = 1000
SEED_ENV = "NNQ_SCHEMATHESIS_SEED"
DEFAULT_SEED = "1"
TOKEN = "schemathesis-token"
RUN_TIMEOUT_S = 600
OUTPUT_TAIL_CHARS = 20_000
SERVER_ERROR = 500


def schemathesis_argv(url: str, reports: Path, seed: str) -> list[str]:
    return [str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(CONFIG),
            "--no-color", "run", f"{url}/api/v1/openapi.json",
            "--header", f"Authorization: Bearer {TOKEN}", "--seed", seed,
            "--report", "json,har", "--report-json-path", str(reports / "run.json"),
            "--report-har-path", str(reports / "run.har")]


def test_generated_requests_get_no_5xx_and_nothing_outside_the_document(
        database_url, redis_url, sessions, synthetic, tmp_path):
    net = nncore.build(MODEL_SPEC, synthetic.input_shape, synthetic.num_classes, seed=7)
    store_model(sessions, net, synthetic)  # so reads, downloads and predict reach a model
    seed = os.environ.get(SEED_ENV) or DEFAULT_SEED
    env = {"NNQ_DATABASE_URL": database_url, "NNQ_BROKER_URL": redis_url,
           "NNQ_API_TOKEN": TOKEN}
    with served_api(tmp_path / "gunicorn.log", env) as url:
        run = subprocess.run(schemathesis_argv(url, tmp_path, seed), cwd=tmp_path,
                             capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                             check=False)
    output = (run.stdout + run.stderr)[-OUTPUT_TAIL_CHARS:]
    report = json.loads((tmp_path / "run.json").read_text())
    entries = json.loads((tmp_path / "run.har").read_text())["log"]["entries"]
    statuses = Counter(entry["response"]["status"] for entry in entries)
    server_errors = sum(n for status, n in statuses.items() if status >= SERVER_ERROR)
    cases = report["test_cases"]["generated"]
    failures = {f["code"]: f["count"] for f in report["failures"]}
    print(f"schemathesis seed {seed}: {cases} cases over {report['operations']['tested']} "
          f"operations, {len(entries)} responses, 5xx: {server_errors}, failed checks: "
          f"{failures or 0}, statuses: {dict(sorted(statuses.items()))}")

    assert report["operations"]["tested"] == report["operations"]["total"], output
    assert cases >= MIN_CASES, output
    assert server_errors == 0, output
    assert not report["failures"] and not report["errors"], output
    assert run.returncode == 0, output
