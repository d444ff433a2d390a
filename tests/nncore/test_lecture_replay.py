"""The lecture's experiments, replayed small (``bench/lecture.py --quick``): every lesson that
is stable at that size holds, and every experiment file is a sweep nnq accepts as it is."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.nncore.test_data import FASHION_DIR

ROOT = Path(__file__).resolve().parents[2]
REPLAY_TIMEOUT_S = 600  # a hang guard: the quick replay takes about 30 s of one core
LECTURE_EXAMPLES = sorted((ROOT / "examples" / "lecture").glob("*.json"))


def load_bench_lecture():
    """bench/lecture.py as a module (bench/ is scripts, not a package)."""
    name = "bench_lecture"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "lecture.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_every_experiment_has_its_sweep_file():
    lecture = load_bench_lecture()
    assert [p.stem for p in LECTURE_EXAMPLES] == sorted(e.name for e in lecture.EXPERIMENTS)


@pytest.mark.parametrize("path", LECTURE_EXAMPLES, ids=lambda p: p.name)
def test_every_trial_of_an_experiment_is_a_spec_the_api_accepts(path):
    lecture = load_bench_lecture()
    request = json.loads(path.read_text())
    params = lecture.trial_params(request)
    assert params and len(params) <= 200
    specs = [lecture.trial_spec(request, p, i) for i, p in enumerate(params)]
    assert len({json.dumps(s, sort_keys=True) for s in specs}) == len(specs)


@pytest.mark.skipif(not os.path.isdir(FASHION_DIR),
                    reason=f"Fashion-MNIST not installed at {FASHION_DIR} (dataset-fashion-mnist)")
def test_the_quick_replay_passes_every_stable_lesson():
    # A process of its own, so that it trains with a worker's single BLAS thread.
    env = {key: value for key, value in os.environ.items() if key != "NNQ_DATA_DIR"}
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "lecture.py"), "--quick"],
                            cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=REPLAY_TIMEOUT_S, check=False)
    out = result.stdout
    verdicts = [v for v, _ in re.findall(r"^  (PASS|FAIL|info)  (.*)$", out, re.MULTILINE)]
    assert result.returncode == 0, out + result.stderr
    assert verdicts.count("FAIL") == 0 and verdicts.count("PASS") >= 9
    assert len(re.findall(r"^== ", out, re.MULTILINE)) == 5
    assert re.search(r"^(\d+) of \1 checked claims PASS \(quick\)$", out, re.MULTILINE)
