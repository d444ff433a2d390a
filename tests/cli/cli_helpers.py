"""Run the installed `nnq` console script and a real API process for the CLI tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from nnq.processes import WaitTimeout, wait_until

ROOT = Path(__file__).resolve().parents[2]
NNQ = str(Path(sys.executable).with_name("nnq"))
START_SECONDS = 60.0
HTTP_PROBE_SECONDS = 2.0
POLL_SECONDS = 0.2


def cli_env(**extra: str) -> dict[str, str]:
    """A plain environment: wide, colourless output, no token or API URL from the caller."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("NNQ_API_TOKEN", "NNQ_API_URL")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}, **extra)
    return env


def nnq(api_url: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([NNQ, "--api", api_url, *args], capture_output=True, text=True,
                          timeout=timeout, env=cli_env(), cwd=ROOT)


def wait_while_alive(process: subprocess.Popen, log: Path, what: str, condition, *,
                 timeout: float = START_SECONDS):
    """Poll ``condition`` while ``process`` lives; fail with the process log if it dies or
    the condition never holds."""
    def holds():
        if process.poll() is not None:
            raise AssertionError(f"process exited {process.returncode}:\n{log.read_text()}")
        return condition()

    try:
        return wait_until(what, holds, timeout=timeout, poll=POLL_SECONDS)
    except WaitTimeout as exc:
        raise AssertionError(f"{exc}:\n{log.read_text()}") from None


def wait_for_http(url: str, process: subprocess.Popen, log: Path) -> None:
    """Return once `url` answers at all; fail with the process log if it dies or never does."""
    def answers() -> bool:
        try:
            httpx.get(url, timeout=HTTP_PROBE_SECONDS)
        except httpx.HTTPError:
            return False
        return True

    wait_while_alive(process, log, f"{url} to answer", answers)
