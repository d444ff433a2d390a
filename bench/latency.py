"""Submit to start: from ``POST /jobs`` returning to the worker's first training iteration.

Starts a private ``redis-server``, a scratch database (SQLite file, or PostgreSQL with
``--postgres``: created and dropped) and one real worker (``celery -A workers worker
--concurrency 1``), then submits tiny jobs through the API's app one at a time, each on an
idle worker, and times three moments on one clock (the host's):

- the POST returning (this process);
- the claim (the attempt row's ``started_at``, written by the worker);
- the first iteration: a trigger on the scratch database stamps the commit of the job's first
  progress write, which the worker makes right after its first training iteration.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/latency.py \
        [--jobs 200] [--postgres]

Target: p50 at most 20 ms, p99 at most 100 ms from the POST returning to the first iteration.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from stack import (
    ScratchPostgres,
    bench_env,
    celery_worker,
    load_average,
    sqlite_database,
)

from nnq.processes import start_redis, stop_process
from nnq.status import JobStatus

TINY_JOB = {"name": "latency", "data": {"dataset": "synthetic", "samples": 200},
            "model": {"preset": "mlp", "hidden": [16]},
            "train": {"epochs": 1, "batch_size": 50}}
TARGET_P50_MS, TARGET_P99_MS = 20.0, 100.0
POLL_S = 0.001
JOB_TIMEOUT_S = 60.0
WARMUP_JOBS = 3
SQLITE_TRIGGER = [
    "CREATE TABLE bench_first_iteration (job_id INTEGER PRIMARY KEY, at REAL)",
    """CREATE TRIGGER bench_first_iteration AFTER UPDATE OF iteration ON jobs
       WHEN NEW.iteration >= 1 AND OLD.iteration = 0
       BEGIN INSERT OR IGNORE INTO bench_first_iteration
             VALUES (NEW.id, (julianday('now') - 2440587.5) * 86400.0); END""",
]
POSTGRES_TRIGGER = [
    "CREATE TABLE bench_first_iteration (job_id integer PRIMARY KEY, at double precision)",
    """CREATE FUNCTION bench_first_iteration() RETURNS trigger AS $$ BEGIN
         INSERT INTO bench_first_iteration
         VALUES (NEW.id, extract(epoch FROM clock_timestamp())) ON CONFLICT DO NOTHING;
         RETURN NEW; END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER bench_first_iteration AFTER UPDATE OF iteration ON jobs FOR EACH ROW
       WHEN (NEW.iteration >= 1 AND OLD.iteration = 0)
       EXECUTE FUNCTION bench_first_iteration()""",
]


def add_trigger(url: str) -> None:
    from sqlalchemy import text

    from service.db import engine_for

    statements = SQLITE_TRIGGER if url.startswith("sqlite") else POSTGRES_TRIGGER
    with engine_for(url).begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def wait_for(what: str, read, timeout: float = JOB_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    while (value := read()) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} after {timeout:g} s")
        time.sleep(POLL_S)
    return value


def one_job(client, sessions) -> tuple[float, float]:
    """(POST returned -> claim, POST returned -> first iteration), in milliseconds."""
    from sqlalchemy import text

    from service.db import JobAttempt
    from service.db import jobs as store

    response = client.post("/api/v1/jobs", json=TINY_JOB)
    returned = time.time()
    assert response.status_code == 202, response.get_data(as_text=True)
    job_id = response.get_json()["id"]

    def first_iteration():
        with sessions() as session:
            return session.scalar(text("SELECT at FROM bench_first_iteration WHERE job_id = :j"),
                                  {"j": job_id})

    started = wait_for("first iteration", first_iteration)

    def finished():
        with sessions() as session:
            job = store.get_job(session, job_id)
            if job.status in JobStatus.FINISHED:
                return session.query(JobAttempt.started_at).filter_by(job_id=job_id).scalar()
            return None

    claimed = wait_for("end of the job", finished)
    claimed_at = claimed.replace(tzinfo=dt.UTC).timestamp()
    return (claimed_at - returned) * 1e3, (started - returned) * 1e3


def percentiles(values: list[float]) -> str:
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return f"p50 {p50:6.1f}  p90 {p90:6.1f}  p99 {p99:6.1f}  max {max(values):6.1f} ms"


def run(url: str, redis_url: str, jobs: int, workdir: Path) -> None:
    from service import create_app
    from service.db import session_factory

    add_trigger(url)
    env = bench_env(NNQ_DATABASE_URL=url, NNQ_BROKER_URL=redis_url)
    worker = celery_worker("latency", workdir / "worker.log", env)
    try:
        client = create_app({"NNQ_DATABASE_URL": url, "NNQ_BROKER_URL": redis_url}).test_client()
        sessions = session_factory(url)
        for _ in range(WARMUP_JOBS):
            one_job(client, sessions)
        print(f"{jobs} jobs, {url.split(':')[0]} database; {load_average()}", flush=True)
        claims, starts = [], []
        for _ in range(jobs):
            claim_ms, start_ms = one_job(client, sessions)
            claims.append(claim_ms)
            starts.append(start_ms)
        print(f"POST returned -> claimed:         {percentiles(claims)}")
        print(f"claimed -> first iteration:       "
              f"{percentiles([s - c for s, c in zip(starts, claims)])}")
        p50, p99 = np.percentile(starts, [50, 99])
        print(f"POST returned -> first iteration: {percentiles(starts)}  (target p50 <= "
              f"{TARGET_P50_MS:g}, p99 <= {TARGET_P99_MS:g}: "
              f"{'met' if p50 <= TARGET_P50_MS and p99 <= TARGET_P99_MS else 'missed'}); "
              f"mean {statistics.fmean(starts):.1f} ms")
        print(f"after: {load_average()}")
    finally:
        worker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--postgres", action="store_true",
                        help="a scratch PostgreSQL database instead of a SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        redis, redis_url = start_redis(workdir, stdout=subprocess.DEVNULL)
        try:
            if args.postgres:
                with ScratchPostgres() as url:
                    run(url, f"{redis_url}/0", args.jobs, workdir)
            else:
                run(sqlite_database(workdir), f"{redis_url}/0", args.jobs, workdir)
        finally:
            stop_process(redis)


if __name__ == "__main__":
    main()
