"""Run the installed `nnq` console script and a real API process for the CLI tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
NNQ = str(Path(sys.executable).with_name("nnq"))
START_SECONDS = 60.0


def cli_env(**extra: str) -> dict[str, str]:
    """A plain environment: wide, colourless output, no token or API URL from the caller."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("NNQ_API_TOKEN", "NNQ_API_URL")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}, **extra)
    return env


def nnq(api_url: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([NNQ, "--api", api_url, *args], capture_output=True, text=True,
                          timeout=timeout, env=cli_env(), cwd=ROOT)


def wait_for_http(url: str, process: subprocess.Popen, log: Path) -> None:
    """Return once `url` answers at all; fail with the process log if it dies or never does."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"process exited {process.returncode}:\n{log.read_text()}")
        try:
            httpx.get(url, timeout=2.0)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered:\n{log.read_text()}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
