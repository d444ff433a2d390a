"""A local nnq stack (Redis, migrated DB, API, one worker) as child processes.

`nnq up` runs it in the foreground and `nnq demo` in the background of one command; both use
this module so there is one way to start and stop the parts. Each child runs in its own
session (process group), so a Ctrl-C at the terminal reaches only `nnq`, which then stops the
children in order and kills any group (e.g. Celery's pool processes) that outlives a grace time.

The server code runs in the children (`alembic`, `gunicorn`, `celery` subprocesses); this module
imports none of it, only the settings, inside the function that needs the defaults.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from nnq.processes import (
    WaitTimeout, port_in_use, redis_reachable, start_redis, stop_process_group, wait_until,
)

HEALTH_TIMEOUT_SECONDS = 90.0
# The API is served as compose serves it (gunicorn with service/gunicorn_conf.py, so its own
# refusals are JSON too); threads keep the dashboard's polls from waiting behind a long
# predict request.
API_WORKERS = 2
API_THREADS = 4
HEALTH_REQUEST_SECONDS = 2.0
HEALTH_BODY_SHOWN = 200
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
    """What to run. `log_dir=None` lets children write to this terminal (foreground `nnq up`);
    unset URLs come from the settings (NNQ_DATABASE_URL, NNQ_BROKER_URL)."""

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
            self._resolve_urls()
            self.env = self._child_env()
            self._migrate()
            self._spawn("api", [sys.executable, "-m", "gunicorn", "-c",
                                "python:service.gunicorn_conf", "service:create_app()",
                                "--bind", f"{self.config.host}:{self.config.port}",
                                "--workers", str(API_WORKERS), "--threads", str(API_THREADS),
                                "--timeout", "120"])
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
        return wait_until("a child to exit", self.dead_child, timeout=None, poll=POLL_SECONDS)

    def describe_death(self, child: Child) -> str:
        message = f"{child.name} (pid {child.pid}) exited with code {child.process.returncode}"
        tail = child.log_tail()
        return f"{message}\n{tail}" if tail else message

    def stop(self) -> None:
        """Stop API and worker, then Redis: SIGTERM each group, SIGKILL it after a grace time."""
        for child in reversed(self.children):
            if not stop_process_group(child.process):
                self.say(f"{child.name} did not stop in time; killed it")
            self.say(f"stopped {child.name}")
        self.children.clear()
        for path in self.scratch_dirs:
            shutil.rmtree(path, ignore_errors=True)
        self.scratch_dirs.clear()

    def _resolve_urls(self) -> None:
        from service.settings import settings

        try:
            defaults = settings()
        except ValueError as exc:  # pydantic's ValidationError names the bad NNQ_* variable
            raise StackError(f"invalid settings: {exc}") from None
        self.database_url = self.config.database_url or defaults.database_url
        url = self.config.broker_url or defaults.broker_url
        has_server = shutil.which("redis-server") is not None
        if self.config.private_broker and has_server:
            self.broker_url = self._start_redis()
        elif redis_reachable(url):
            self.say(f"using Redis at {url}")
            self.broker_url = url
        elif not has_server:
            raise StackError(f"no Redis answers at {url} and `redis-server` is not installed "
                             "(install the redis-server package or set NNQ_BROKER_URL)")
        else:
            self.say(f"no Redis answers at {url}; starting a private redis-server")
            self.broker_url = self._start_redis()

    def _start_redis(self) -> str:
        data_dir = Path(tempfile.mkdtemp(prefix="redis-", dir=self.config.var_dir))
        self.scratch_dirs.append(data_dir)
        with self._output("redis") as (output, log_path):
            try:
                process, url = start_redis(data_dir, **self._popen_options(output))
            except (RuntimeError, WaitTimeout) as exc:
                raise StackError(str(exc)) from None
        self._adopt("redis", process, log_path)
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

    @contextmanager
    def _output(self, name: str) -> Iterator[tuple[IO[bytes] | None, Path | None]]:
        """The open log file a child named ``name`` writes to, or None for this terminal."""
        if self.config.log_dir is None:
            yield None, None
            return
        self.config.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.config.log_dir / f"{name}.log"
        with open(log_path, "ab") as output:
            yield output, log_path

    def _popen_options(self, output: IO[bytes] | None) -> dict:
        """Each child: in the stack's directory and environment, in a session of its own, and
        told to stop should `nnq` itself die."""
        return {"cwd": self.config.root, "env": self.env or None, "stdin": subprocess.DEVNULL,
                "stdout": output, "stderr": subprocess.STDOUT if output else None,
                "start_new_session": True, "preexec_fn": _die_with_parent}

    def _spawn(self, name: str, argv: list[str]) -> Child:
        with self._output(name) as (output, log_path):
            process = subprocess.Popen(argv, **self._popen_options(output))
        return self._adopt(name, process, log_path)

    def _adopt(self, name: str, process: subprocess.Popen, log_path: Path | None) -> Child:
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
        last = "no answer yet"

        def healthy() -> bool:
            nonlocal last
            self._check_children()
            try:
                response = httpx.get(url, timeout=HEALTH_REQUEST_SECONDS)
            except httpx.HTTPError as exc:
                last = str(exc) or type(exc).__name__
                return False
            last = f"HTTP {response.status_code}: {response.text[:HEALTH_BODY_SHOWN]}"
            return _all_parts_up(response)

        try:
            wait_until(f"the API to become healthy at {url}", healthy,
                       timeout=HEALTH_TIMEOUT_SECONDS, poll=POLL_SECONDS)
        except WaitTimeout as exc:
            raise StackError(f"{exc} ({last})") from None
        self.say(f"API ready at {self.api_url}")


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
