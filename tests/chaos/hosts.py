"""Worker "hosts" on one machine: Linux network namespaces on a private bridge.

``HostNetwork`` makes a bridge in the root namespace (it gets the subnet's ``.1``, where the
test's own PostgreSQL and Redis listen) and one namespace per host, each joined to the bridge
by a veth pair and given its own address. ``cut(host)`` sets the host's bridge-side veth
down: its packets go nowhere, but its sockets and routes stay, so its TCP connections hang
and resume when ``restore(host)`` brings the link back, like a partition that heals (the
worker never sees an error, only silence, then its late writes arrive).

``HostWorker`` is a real ``celery -A workers worker`` started inside a host's namespace, in
a UTS namespace of its own whose hostname is the host's name (so lease owners and attempt
rows name the host). Everything needs root and ``ip``; ``unavailable()`` says why not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.support import ROOT, WorkerProcess

SUBNET_PREFIX = "10.231"
IP_TIMEOUT_S = 10


def _ip(*argv: str) -> None:
    done = subprocess.run(["ip", *argv], capture_output=True, text=True, timeout=IP_TIMEOUT_S,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(argv)}: {done.stderr.strip()}")


def unavailable() -> str | None:
    """Why namespaces cannot be made here (None when they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    missing = [p for p in ("ip", "unshare", "hostname") if shutil.which(p) is None]
    if missing:
        return f"not installed: {missing}"
    probe = f"nnqprobe{os.getpid() % 100000}"
    try:
        _ip("netns", "add", probe)
    except RuntimeError as exc:
        return f"cannot create a network namespace: {exc}"
    _ip("netns", "del", probe)
    return None


@dataclass(frozen=True)
class Host:
    name: str        # also its hostname and namespace name
    address: str
    bridge_veth: str  # the root-namespace end: set down to cut the host off


class HostNetwork:
    """A bridge with ``count`` namespaced hosts on 10.231.<n>.0/24; names unique per run."""

    def __init__(self, count: int):
        tag = os.getpid() % 1000
        self.subnet = f"{SUBNET_PREFIX}.{tag % 250 + 1}"
        self.bridge = f"nnqbr{tag}"
        self.address = f"{self.subnet}.1"  # the root namespace: database and broker
        self.hosts = [Host(f"nnqh{tag}{chr(ord('a') + i)}", f"{self.subnet}.{i + 2}",
                           f"nnqv{tag}{chr(ord('a') + i)}") for i in range(count)]

    def create(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.address}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for host in self.hosts:
            inner = f"{host.bridge_veth}i"
            _ip("netns", "add", host.name)
            _ip("link", "add", host.bridge_veth, "type", "veth", "peer", "name", inner)
            _ip("link", "set", inner, "netns", host.name)
            _ip("-n", host.name, "link", "set", inner, "name", "eth0")
            _ip("-n", host.name, "addr", "add", f"{host.address}/24", "dev", "eth0")
            _ip("-n", host.name, "link", "set", "eth0", "up")
            _ip("-n", host.name, "link", "set", "lo", "up")
            _ip("link", "set", host.bridge_veth, "master", self.bridge)
            _ip("link", "set", host.bridge_veth, "up")

    def cut(self, host: Host) -> None:
        _ip("link", "set", host.bridge_veth, "down")

    def restore(self, host: Host) -> None:
        _ip("link", "set", host.bridge_veth, "up")

    def destroy(self) -> None:
        """Remove whatever ``create`` made (deleting a namespace deletes its veth pair)."""
        for host in self.hosts:
            subprocess.run(["ip", "netns", "del", host.name], capture_output=True, check=False)
            subprocess.run(["ip", "link", "del", host.bridge_veth], capture_output=True,
                           check=False)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)


class HostWorker(WorkerProcess):
    """A real Celery worker process running on ``host`` (its namespace and hostname)."""

    def __init__(self, host: Host, env: dict[str, str], log_path: Path, queues: str = "cpu"):
        self.host = host
        self.name = f"nnq-test-{uuid.uuid4().hex[:8]}"
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed by stop(), like the base's
        celery = [sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q", queues,
                  "--pool", "solo", "--concurrency", "1", "-n", f"{self.name}@%h",
                  "--loglevel", "INFO", "--without-gossip", "--without-mingle",
                  "--without-heartbeat"]
        # ip netns exec, unshare and sh each exec the next: the pid is the worker's own.
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", host.name, "unshare", "--uts", "--", "sh", "-c",
             'hostname "$0" && exec "$@"', host.name, *celery],
            cwd=ROOT, env={**os.environ, **env}, stdout=self._log, stderr=subprocess.STDOUT)
