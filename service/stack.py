"""A local nnq stack (Redis, migrated DB, API, one worker) as child processes.

`nnq up` runs it in the foreground and `nnq demo` in the background of one command; both use
this module so there is one way to start and stop the parts. Each child runs in its own
session (process group), so a Ctrl-C at the terminal reaches only `nnq`, which then stops the
children in order and kills any group (e.g. Celery's pool processes) that outlives a grace time.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

DEFAULT_BROKER_URL = "redis://localhost:6379/0"
STOP_GRACE_SECONDS = 10.0
HEALTH_TIMEOUT_SECONDS = 90.0
REDIS_START_SECONDS = 10.0
POLL_SECONDS = 0.25
LOG_TAIL_LINES = 20
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class StackError(RuntimeError):
    """A part of the stack could not start or died; the message says which and why."""


def project_root() -> Path:
    """The directory holding alembic.ini: the working directory if it has one, else the checkout."""
    cwd = Path.cwd()
    if (cwd / "alembic.ini").is_file():
        return cwd
    return Path(__file__).resolve().parents[1]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    """True when something accepts connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def redis_reachable(url: str, timeout: float = 1.0) -> bool:
    """True when a Redis server at `url` answers PING."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


@dataclass
class Child:
    """One started process, with where its output goes."""

    name: str
    process: subprocess.Popen
    log_path: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


@dataclass
class StackConfig:
    """What to run. `log_dir=None` lets children write to this terminal (foreground `nnq up`)."""

    root: Path = field(default_factory=project_root)
    host: str = "127.0.0.1"
    port: int = 5000
    broker_url: str | None = None
    database_url: str | None = None
    private_broker: bool = False
    log_dir: Path | None = None
    queues: str = "cpu"
    concurrency: int = 1

    @property
    def var_dir(self) -> Path:
        return self.root / "var"


class Stack:
    """Starts Redis (when needed), migrates, starts API and worker; stops them all."""

    def __init__(self, config: StackConfig, say: Callable[[str], None] = print):
        self.config = config
        self.say = say
        self.children: list[Child] = []
        self.scratch_dirs: list[Path] = []  # a private Redis's directory, removed at stop
        self.env: dict[str, str] = {}
        self.broker_url = ""
        self.database_url = ""

    @property
    def api_url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}"

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        """Bring every part up and return once /api/v1/health answers; stop all on failure."""
        if port_in_use(self.config.host, self.config.port):
            raise StackError(f"{self.config.host}:{self.config.port} is already in use "
                             "(another `nnq up`?); choose another with --port")
        try:
            self.config.var_dir.mkdir(parents=True, exist_ok=True)
            self.database_url = self._database_url()
            self.broker_url = self._broker_url()
            self.env = self._child_env()
            self._migrate()
            self._spawn("api", [sys.executable, "-m", "flask", "--app", "service", "run",
                                "--host", self.config.host, "--port", str(self.config.port),
                                "--no-reload"])
            self._spawn("worker", [sys.executable, "-m", "celery", "-A", "workers", "worker",
                                   "-Q", self.config.queues,
                                   "--concurrency", str(self.config.concurrency),
                                   "--loglevel", "INFO",
                                   "--hostname", f"nnq-up-{os.getpid()}@%h"])
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    def dead_child(self) -> Child | None:
        """The first child that has exited, if any."""
        for child in self.children:
            if child.process.poll() is not None:
                return child
        return None

    def wait(self) -> Child:
        """Block until a child exits (the stack is then broken) and return it."""
        while True:
            child = self.dead_child()
            if child is not None:
                return child
            time.sleep(POLL_SECONDS)

    def describe_death(self, child: Child) -> str:
        message = f"{child.name} (pid {child.pid}) exited with code {child.process.returncode}"
        tail = child.log_tail()
        return f"{message}\n{tail}" if tail else message

    def stop(self) -> None:
        """Stop API and worker, then Redis: SIGTERM each group, SIGKILL it after a grace time."""
        for child in reversed(self.children):
            self._terminate(child)
        self.children.clear()
        for path in self.scratch_dirs:
            shutil.rmtree(path, ignore_errors=True)
        self.scratch_dirs.clear()

    def _database_url(self) -> str:
        url = self.config.database_url or os.environ.get("NNQ_DATABASE_URL")
        if url:
            return url
        return f"sqlite:///{self.config.var_dir / 'nnq.db'}"

    def _broker_url(self) -> str:
        url = self.config.broker_url or os.environ.get("NNQ_BROKER_URL") or DEFAULT_BROKER_URL
        has_server = shutil.which("redis-server") is not None
        if self.config.private_broker and has_server:
            return self._start_redis()
        if redis_reachable(url):
            self.say(f"using Redis at {url}")
            return url
        if not has_server:
            raise StackError(f"no Redis answers at {url} and `redis-server` is not installed "
                             "(install the redis-server package or set NNQ_BROKER_URL)")
        self.say(f"no Redis answers at {url}; starting a private redis-server")
        return self._start_redis()

    def _start_redis(self) -> str:
        port = free_port()
        data_dir = self.config.var_dir / f"redis-{port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.scratch_dirs.append(data_dir)
        self._spawn("redis", ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", str(data_dir)])
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + REDIS_START_SECONDS
        while not redis_reachable(url, timeout=0.5):
            self._check_children()
            if time.monotonic() > deadline:
                raise StackError(f"redis-server did not answer on port {port}")
            time.sleep(POLL_SECONDS)
        self.say(f"redis-server answers at {url}")
        return url

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"NNQ_DATABASE_URL": self.database_url, "NNQ_BROKER_URL": self.broker_url,
                    "PYTHONUNBUFFERED": "1"})
        return env

    def _migrate(self) -> None:
        self.say(f"migrating {self.database_url}")
        result = subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"],
                                cwd=self.config.root, env=self.env, capture_output=True,
                                text=True)
        if result.returncode != 0:
            raise StackError(f"alembic upgrade head failed:\n{result.stderr.strip()}")

    def _spawn(self, name: str, argv: list[str]) -> Child:
        log_path = None
        output = None
        if self.config.log_dir is not None:
            self.config.log_dir.mkdir(parents=True, exist_ok=True)
            log_path = self.config.log_dir / f"{name}.log"
            output = open(log_path, "ab")
        try:
            process = subprocess.Popen(argv, cwd=self.config.root, env=self.env or None,
                                       stdin=subprocess.DEVNULL, stdout=output,
                                       stderr=subprocess.STDOUT if output else None,
                                       start_new_session=True, preexec_fn=_die_with_parent)
        finally:
            if output is not None:
                output.close()
        child = Child(name, process, log_path)
        self.children.append(child)
        self.say(f"started {name} (pid {child.pid})")
        return child

    def _check_children(self) -> None:
        child = self.dead_child()
        if child is not None:
            raise StackError(self.describe_death(child))

    def _wait_healthy(self) -> None:
        url = f"{self.api_url}/api/v1/health"
        deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
        last = "no answer yet"
        while time.monotonic() < deadline:
            self._check_children()
            try:
                response = httpx.get(url, timeout=2.0)
                if _all_parts_up(response):
                    self.say(f"API ready at {self.api_url}")
                    return
                last = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = str(exc) or type(exc).__name__
            time.sleep(POLL_SECONDS)
        raise StackError(f"the API did not become healthy at {url} ({last})")

    def _terminate(self, child: Child) -> None:
        if child.process.poll() is None:
            _signal_group(child.pid, signal.SIGTERM)
            try:
                child.process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.say(f"{child.name} did not stop in {STOP_GRACE_SECONDS:.0f} s; killing it")
        _signal_group(child.pid, signal.SIGKILL)
        child.process.wait()
        self.say(f"stopped {child.name}")


def _all_parts_up(response: httpx.Response) -> bool:
    """Health says DB, broker and a worker answer (so a job submitted now will run)."""
    try:
        body = response.json()
    except ValueError:
        return False
    parts = ("db", "broker", "workers")
    return response.status_code == 200 and all(body.get(part, True) for part in parts)


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, get SIGTERM if `nnq` itself is killed outright,
    so a SIGKILLed `nnq up` leaves no stack behind (its own session hides Ctrl-C from it)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _signal_group(pgid: int, sig: int) -> None:
    """Signal a child's whole process group; gone groups are fine."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
