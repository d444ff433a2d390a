"""examples/lecture.py runs end to end against a real stack, as a script."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.cli.cli_helpers import ROOT, cli_env

pytestmark = pytest.mark.integration


@pytest.mark.timeout(300)
def test_lecture_example_runs(api_url, worker, tmp_path):
    worker()
    figure = tmp_path / "lecture.png"
    result = subprocess.run([sys.executable, "examples/lecture.py"], cwd=ROOT, timeout=240,
                            capture_output=True, text=True,
                            env=cli_env(NNQ_API_URL=api_url, NNQ_LECTURE_FIGURE=str(figure)))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    print(out)
    assert f"API: {api_url}" in out
    assert len(re.findall(r"^job \d+ succeeded$", out, re.MULTILINE)) == 2
    for flag in ("false", "true"):
        assert re.search(rf"^batchnorm={flag}: job \d+, 5 epochs, train_acc [01]\.\d{{4}}, "
                         rf"test_acc [01]\.\d{{4}}$", out, re.MULTILINE), out
        assert re.search(rf"^model \d+ \(batchnorm={flag}\): test image 0 is \d with "
                         rf"p=[01]\.\d{{3}} \(true label \d\)$", out, re.MULTILINE), out
    assert f"figure: {figure} (4 curves)" in out
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
