"""Process helpers shared by `nnq up`, `nnq demo` and the tests: free ports, a throwaway
Redis, stopping a child (or its whole process group) and polling with a deadline.

Stdlib only at import time (`redis` is imported when a Redis is pinged), so the CLI stays
light for commands that never start a process.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

LOCALHOST = "127.0.0.1"
PORT_PROBE_SECONDS = 1.0
REDIS_PING_SECONDS = 1.0
REDIS_START_SECONDS = 30.0
STOP_GRACE_SECONDS = 10.0
POLL_SECONDS = 0.1

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """`wait_until` gave up; the message names what it waited for and for how long."""


def wait_until(what: str, predicate: Callable[[], T], *, timeout: float | None,
               poll: float = POLL_SECONDS) -> T:
    """Call ``predicate`` every ``poll`` seconds until it returns something truthy, and return
    that. ``timeout=None`` waits for ever; otherwise raise WaitTimeout after ``timeout`` s.
    The predicate may raise to give up early (a watched process died)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if deadline is not None and time.monotonic() > deadline:
            raise WaitTimeout(f"gave up waiting for {what} after {timeout:g} s")
        time.sleep(poll)


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    """True when something accepts connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(PORT_PROBE_SECONDS)
        return sock.connect_ex((host, port)) == 0


def redis_reachable(url: str, timeout: float = REDIS_PING_SECONDS) -> bool:
    """True when a Redis server at ``url`` answers PING."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


def start_redis(data_dir: Path, *, timeout: float = REDIS_START_SECONDS,
                **popen_options: Any) -> tuple[subprocess.Popen, str]:
    """A throwaway ``redis-server`` without persistence on a free local port, once it answers:
    ``(process, "redis://127.0.0.1:PORT")``, a URL without a DB index, so callers can append
    theirs. ``popen_options`` go to Popen (where output goes, a session of its own).
    Raises RuntimeError, with the server stopped, when it is not installed or does not answer."""
    if shutil.which("redis-server") is None:
        raise RuntimeError("`redis-server` is not installed (apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", LOCALHOST, "--save", "",
         "--appendonly", "no", "--dir", str(data_dir)],
        **{"stdin": subprocess.DEVNULL, **popen_options})
    url = f"redis://{LOCALHOST}:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server on port {port} exited with {process.returncode}")
        return redis_reachable(url)

    try:
        wait_until(f"redis-server on port {port}", answers, timeout=timeout)
    except (RuntimeError, WaitTimeout):
        stop_process(process)
        raise
    return process, url


def stop_process(process: subprocess.Popen, grace: float = STOP_GRACE_SECONDS) -> bool:
    """SIGTERM, then SIGKILL after ``grace`` seconds; True when it stopped in time."""
    return _stop(process, grace, process.send_signal, kill_leftovers=False)


def stop_process_group(process: subprocess.Popen, grace: float = STOP_GRACE_SECONDS) -> bool:
    """Like `stop_process` for a child started with ``start_new_session=True``, but each signal
    reaches its whole process group, and the SIGKILL is sent even after the leader exited, so
    pool processes that outlive it (Celery's) go too."""
    return _stop(process, grace, lambda sig: signal_group(process.pid, sig),
                 kill_leftovers=True)


def signal_group(pgid: int, sig: int) -> None:
    """Signal a whole process group; a group that is gone already is fine."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _stop(process: subprocess.Popen, grace: float, send: Callable[[int], None], *,
          kill_leftovers: bool) -> bool:
    in_time = True
    if process.poll() is None:
        send(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            in_time = False
    if kill_leftovers or not in_time:
        send(signal.SIGKILL)
    process.wait()
    return in_time
