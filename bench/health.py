"""How long ``GET /api/v1/health``, ``/health/live`` and ``/workers`` take over HTTP, with no
worker and with one, and on the first request after the API started.

Starts a private redis-server, a migrated SQLite database and the API under gunicorn as
compose runs it (``service.gunicorn_conf``, one sync worker), times ``--requests`` requests
of each kind, then starts one Celery worker and times them again. Prints the median and 95th
percentile and the slowest request in milliseconds (while no worker is known, one request
a second waits for the census's probe, at most 0.25 s).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/health.py [--requests 200]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from stack import Child, bench_env, celery_worker, load_average, sqlite_database

from nnq.processes import LOCALHOST, free_port, start_redis, stop_process

PERCENTILE = 95
PATHS = ("/api/v1/health", "/api/v1/health/live", "/api/v1/workers")


def gunicorn(env: dict[str, str], log: Path) -> Child:
    port = free_port()
    api = Child([str(Path(sys.executable).parent / "gunicorn"), "-c",
                 "python:service.gunicorn_conf", "--bind", f"{LOCALHOST}:{port}",
                 "--workers", "1", "service:create_app()"], log, env)
    api.port = port

    def live() -> bool:
        try:
            return httpx.get(f"http://{LOCALHOST}:{port}/api/v1/health/live").is_success
        except httpx.HTTPError:
            return False

    api.wait_for("gunicorn", live)
    return api


def timed_ms(client: httpx.Client, path: str) -> tuple[float, dict]:
    start = time.perf_counter()
    response = client.get(path)
    return (time.perf_counter() - start) * 1000, response.json()


def report(client: httpx.Client, requests: int, state: str) -> None:
    for path in PATHS:
        times = [timed_ms(client, path)[0] for _ in range(requests)]
        p95 = statistics.quantiles(times, n=100)[PERCENTILE - 1]
        print(f"{state:<12} {path:<22} median {statistics.median(times):6.2f} ms   "
              f"p{PERCENTILE} {p95:6.2f} ms   max {max(times):6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    print(load_average())
    with tempfile.TemporaryDirectory(prefix="nnq-bench-health-") as tmp:
        work = Path(tmp)
        redis_proc, redis_url = start_redis(work, stdout=subprocess.DEVNULL)
        env = bench_env(NNQ_DATABASE_URL=sqlite_database(work),
                        NNQ_BROKER_URL=f"{redis_url}/0")
        api = gunicorn(env, work / "api.log")
        worker = None
        try:
            with httpx.Client(base_url=f"http://{LOCALHOST}:{api.port}", timeout=10) as client:
                first, body = timed_ms(client, "/api/v1/health")
                print(f"first /api/v1/health, no worker: {first:.1f} ms {body}")
                report(client, args.requests, "no worker")
                worker = celery_worker("bench-health", work / "worker.log", env)
                time.sleep(1.5)  # past the "no worker" time to live, so the census asks again
                first, body = timed_ms(client, "/api/v1/health")
                print(f"first /api/v1/health after the worker started: {first:.1f} ms {body}")
                report(client, args.requests, "one worker")
        finally:
            if worker is not None:
                worker.stop()
            api.stop()
            stop_process(redis_proc)


if __name__ == "__main__":
    main()
