"""`nnq sweep` against a real API process, a real worker, Redis and the test DB: both
spellings (`nnq sweep FILE --wait` and `nnq sweep show ID`), promote and cancel."""

from __future__ import annotations

import json
import re

import pytest

from tests.cli.cli_helpers import ROOT, nnq

pytestmark = pytest.mark.integration

QUICK_EXAMPLE = ROOT / "examples" / "sweep-synthetic-quick.json"


def ranked_rows(stdout: str) -> list[tuple[int, str]]:
    """(trial index, status) of each row of the ranked table, in rank order."""
    return [(int(index), status) for index, status in
            re.findall(r"^\W*\d+(?: \*)?\W+(\d+)\W+\d+\W+([a-z]+)\W", stdout, re.MULTILINE)]


@pytest.mark.timeout(300)
def test_sweep_file_wait_then_show_promote_and_cancel(api_url, worker):
    worker()
    result = nnq(api_url, "sweep", str(QUICK_EXAMPLE), "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    sweep_id = re.search(r"submitted sweep (\d+)", result.stdout).group(1)
    assert "trials ranked by val_acc" in result.stdout
    assert re.search(rf"sweep {sweep_id} succeeded; 8 trials: ", result.stdout)
    best = re.search(r"best val_acc (0\.\d{4}) \(trial (\d+), job (\d+)", result.stdout)
    assert best, result.stdout

    shown = nnq(api_url, "sweep", "show", sweep_id)
    assert shown.returncode == 0, shown.stderr
    rows = ranked_rows(shown.stdout)
    assert len(rows) == 8 and rows == ranked_rows(result.stdout)
    assert "train.optimizer.lr" in shown.stdout and "train.weight_decay" in shown.stdout
    assert re.search(rf"^\W*1 \*\W+{best.group(2)}\W+{best.group(3)}\W+succeeded", shown.stdout,
                     re.MULTILINE), shown.stdout
    importances = shown.stdout[shown.stdout.index("parameter importances (PedAnova"):]
    assert re.search(r"^  train\.(optimizer\.lr|weight_decay) +[01]\.\d{3}", importances,
                     re.MULTILINE), shown.stdout

    promoted = nnq(api_url, "sweep", "promote", sweep_id, "best-quick")
    assert promoted.returncode == 0, promoted.stderr
    assert re.search(rf"alias best-quick -> model \d+ \(sweep {sweep_id}, trial {best.group(2)}",
                     promoted.stdout)

    late = nnq(api_url, "sweep", "cancel", sweep_id)
    assert late.returncode == 1 and "already succeeded" in late.stderr


def test_sweep_usage_and_service_errors_are_readable(api_url, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**json.loads(QUICK_EXAMPLE.read_text()), "max_trials": 5000}))
    rejected = nnq(api_url, "sweep", str(bad))
    assert rejected.returncode == 1 and "max_trials" in rejected.stderr
    assert "Traceback" not in rejected.stderr
    no_alias = nnq(api_url, "sweep", "promote", "1")
    assert no_alias.returncode != 0 and "Missing argument 'ALIAS'" in no_alias.stderr
    assert "nnq sweep promote" in no_alias.stderr
    missing = nnq(api_url, "sweep", "show", "999")
    assert missing.returncode == 1 and "999" in missing.stderr
    assert "no such file" in nnq(api_url, "sweep", str(tmp_path / "none.json")).stderr


def test_sweep_cancel_then_show_without_a_worker(api_url):
    submitted = nnq(api_url, "sweep", str(QUICK_EXAMPLE))
    assert submitted.returncode == 0, submitted.stderr
    sweep_id = re.search(r"submitted sweep (\d+) \(running, 8 trials: 2 queued, 6 pending\)",
                         submitted.stdout).group(1)
    assert f"nnq sweep show {sweep_id}" in submitted.stdout
    cancelled = nnq(api_url, "sweep", "cancel", sweep_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert f"sweep {sweep_id}: cancelled; 8 trials: 8 cancelled" in cancelled.stdout
    shown = nnq(api_url, "sweep", "show", sweep_id)  # showing a cancelled sweep is no error
    assert shown.returncode == 0 and f"sweep {sweep_id} cancelled" in shown.stdout
    assert "best val_acc: none yet" in shown.stdout
    assert "importances: importances need at least 2 succeeded trials; 0 so far" in shown.stdout


def test_an_adaptive_sweeps_pending_trials_show_as_to_be_chosen(api_url, tmp_path):
    tpe = tmp_path / "tpe.json"
    tpe.write_text(json.dumps({**json.loads(QUICK_EXAMPLE.read_text()), "strategy": "tpe"}))
    submitted = nnq(api_url, "sweep", str(tpe))
    assert submitted.returncode == 0, submitted.stderr
    sweep_id = re.search(r"submitted sweep (\d+)", submitted.stdout).group(1)
    shown = nnq(api_url, "sweep", "show", sweep_id)
    assert shown.returncode == 0, shown.stderr
    waiting = [line for line in shown.stdout.splitlines() if "to be chosen" in line]
    assert len(waiting) == 6 and all("pending" in line for line in waiting)
